"""Schemathesis hooks for tests/e2e/test_fuzz.py (loaded by SCHEMATHESIS_HOOKS).

Nothing here silences a check. What it does, and why:

- Every request on /user, /tweet, /timeline and /auth/logout runs as a fresh
  account (signed up and logged in here). Requests change their account
  (rename it, log it out, delete it), and the contract answers some valid
  requests by that state: following yourself is a 422, an Idempotency-Key
  reused with another body is a 422. Fresh accounts keep one request's state
  out of the next. (Sharing one account across the stateful phase's linked
  steps made Hypothesis's replays inconsistent and cut that phase short; the
  one cost is that deleting a tweet is only ever tried by someone else, a
  403, which tests/api/test_tweets.py covers the other way.)
- No invented ``cursor`` values: a cursor the server did not issue is a 400 by
  contract, which no schema can express for a schema-valid string. Real
  cursors are tested in tests/api/test_cursors.py and test_pagination.py.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.request

import schemathesis

BASE = os.environ["FUZZ_BASE_URL"]
PASSWORD = "fuzz-password-1"
_accounts = itertools.count()


def _post(path: str, body: dict) -> dict:
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _new_account() -> str:
    name = f"fz{os.getpid() % 10000}x{next(_accounts)}"
    _post(
        "/auth/signup",
        {"username": name, "email": f"{name}@fuzz.example", "password": PASSWORD},
    )
    return _post("/auth/login", {"username": name, "password": PASSWORD})[
        "access_token"
    ]


@schemathesis.auth(refresh_interval=None).apply_to(
    path_regex=r"^/(user|tweet|timeline|auth/logout)"
)
class FreshAccount:
    def get(self, case, context):
        return _new_account()

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def before_call(context, case, kwargs):
    # Drop a schema-valid invented cursor (see above); an over-long one stays,
    # as the negative case it is. Schemathesis re-validates the edited case.
    query = case.query or {}
    cursor = query.get("cursor")
    if isinstance(cursor, str) and len(cursor) <= 200:
        del query["cursor"]
