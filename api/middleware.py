"""Cross-cutting concerns: request ids, database connections, authentication."""

from __future__ import annotations

import re
import uuid

from core.container import Deps
from core.db import database
from core.errors import Unauthorized
from core.first_round import FirstRound
from core.services import auth

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Only these prefixes take a presented token into account (see the contract);
# /auth and the operations routes ignore one.
_TOKEN_PREFIXES = ("/user", "/tweet", "/timeline")
ACCESS_COOKIE = "access-Token"
REFRESH_COOKIE = "refresh-Token"


class RequestId:
    """Honour a sane X-Request-ID, or mint one; echo it on the response."""

    def process_request(self, req, resp):
        given = req.get_header("X-Request-ID")
        if given and _SANE_REQUEST_ID.fullmatch(given):
            req.context.request_id, req.context.request_id_ours = given, False
        else:
            req.context.request_id, req.context.request_id_ours = uuid.uuid4().hex, True

    def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header("X-Request-ID", req.context.request_id)


class DatabaseConnection:
    """Return this thread's pooled connection after every request."""

    def process_response(self, req, resp, resource, req_succeeded):
        if not database.is_closed():
            database.close()


def presented_token(req) -> str | None:
    header = req.get_header("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "Use 'Authorization: Bearer <token>'", code="invalid_token"
            )
        return token.strip()
    cookies = req.get_cookie_values(ACCESS_COOKIE)
    return cookies[0] if cookies else None


# Reads that add their own commands to the request's first Redis round trip
# (the timeline window, the reader's bits) before it is sent; every other
# route has the token checked here, on its own.
_SHARED_FIRST_ROUND = frozenset({"/timeline/home", "/timeline/user"})


class Authentication:
    """Validate any token presented on the API routes; set ``req.context.claims``.

    The one place a token is accepted or refused: its signature here, its
    revocation by the check this queues in the request's first round trip to
    Redis (``req.context.first_round``), decided before any reply is used.
    """

    def __init__(self, deps: Deps):
        self._deps = deps

    def process_request(self, req, resp):
        req.context.claims = None
        req.context.first_round = FirstRound(self._deps.redis)
        if not req.path.startswith(_TOKEN_PREFIXES):
            return
        token = presented_token(req)
        if token is None:
            return
        claims = auth.verify_access(self._deps, token)
        req.context.claims = claims
        auth.check_in(self._deps, req.context.first_round, claims)


class SendFirstRound:
    """Send the request's first round trip once every layer has queued its
    part (the token check, the rate-limit counters), unless the route adds
    its own commands first (the timeline reads)."""

    def process_resource(self, req, resp, resource, params):
        if not (req.method == "GET" and req.path in _SHARED_FIRST_ROUND):
            req.context.first_round.run()


def finish_authentication(req) -> None:
    """Send the first round trip now if the route did not (so 401 comes first)."""
    req.context.first_round.run()


def require_claims(req, resp, resource, params):
    """Falcon hook for routes marked **auth** in the contract."""
    if req.context.claims is None:
        raise Unauthorized("This route needs an access token", code="missing_token")


def viewer_id(req) -> int | None:
    claims = req.context.claims
    return claims.user_id if claims else None


__all__ = [
    "Authentication",
    "DatabaseConnection",
    "RequestId",
    "SendFirstRound",
    "require_claims",
]
