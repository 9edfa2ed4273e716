"""Malformed input on every route: a clear 4xx problem, never a 5xx, nothing changed.

The cases are generated from the OpenAPI document, so a new route is covered
as soon as it is documented.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from api.openapi import document
from core import db
from tests.factories import user_with_token

TABLES = (
    "users",
    "follows",
    "tweets",
    "likes",
    "refresh_tokens",
    "revocations",
    "idempotency_keys",
)
NASTY_STRINGS = [
    "",
    " ",
    "*",
    "%",
    "'",
    "' OR 1=1 --",
    "\\",
    "a" * 10_000,
    "\u0000",
    "\ud7ff\ue000",
    "😀" * 300,
    "../../etc/passwd",
    "%2F",
    "admin*",
    "_",
    "[a-z]*",
]
WRONG_TYPES = [1, -1, 2**63, 1.5, True, None, [], ["x"], {}, {"a": 1}]
BAD_IDS = [
    "0",
    "-1",
    "abc",
    "1.5",
    "99999999999999999999999",
    "9223372036854775808",
    "%27",
    "*",
    "１２３",
    " 1",
    "00000000000000000001",
]
BAD_QUERY = {
    "limit": ["0", "-1", "abc", "1e3", "00", "+5", ""],  # a large one is clamped
    "start": ["-1", "x", "1.5", "99999999999", "10001"],
    "cursor": ["garbage", "AAAA", "eyJ9", "x" * 500, "%00"],
}


def snapshot() -> dict:
    out = {}
    for table in TABLES:
        out[table] = db.fetchone(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text),"
            f" '')) FROM {table} t"
        )
    # Outbox rows leave with a relay that earlier tests may have left running;
    # a request must neither add one (ids only ever grow) nor change one.
    out["outbox_ids"] = db.fetchone("SELECT last_value, is_called FROM outbox_id_seq")
    out["outbox_rows"] = {
        row[0]: row[1] for row in db.fetchall("SELECT id, t::text FROM outbox t")
    }
    db.database.close()
    return out


def unchanged(before: dict, after: dict) -> bool:
    """Equal, but for outbox rows the relay published meanwhile."""
    kept = before["outbox_rows"]
    return all(after[k] == before[k] for k in before if k != "outbox_rows") and all(
        kept.get(i) == text for i, text in after["outbox_rows"].items()
    )


@pytest.fixture
def world(client):
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    tweet = client.simulate_post(
        "/tweet/create", json={"tweet_content": "hello"}, headers=a_h
    ).json
    return {"headers": b_h, "tweet": tweet["id"], "user": "alice"}


def operations():
    for path, item in document()["paths"].items():
        for method, op in item.items():
            yield path, method.upper(), op


def fill(path: str, world: dict, tweet_id=None, username=None) -> str:
    return path.replace("{tweet_id}", tweet_id or world["tweet"]).replace(
        "{username}", username or world["user"]
    )


def body_fields(op) -> tuple[dict, list]:
    schema = (
        op.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
    )
    return schema.get("properties", {}), schema.get("required", [])


def valid_body(properties) -> dict:
    samples = {
        "username": "newname",
        "email": "new@example.com",
        "password": "password123",
        "tweet_content": "fine",
        "current_password": "password123",
        "display_name": "D",
        "bio": "B",
        "refresh_token": "nope",
    }
    return {k: samples.get(k, "x") for k in properties if k != "reply_to"}


def bad_requests(world):
    """(method, path, kwargs) for every malformed variant of every operation."""
    for path, method, op in operations():
        if path in ("/auth/logout",):
            continue
        headers = dict(world["headers"])
        url = fill(path, world)
        properties, required = body_fields(op)
        if properties:
            for raw in (
                b"{",
                b"[1,2]",
                b"null",
                b'"s"',
                b"\xff\xfe{}",
                b'{"a":\xff}',
                b"1" * 400,
                b'{"a": 1' + b"]" * 5000,
            ):
                yield (
                    method,
                    url,
                    {
                        "body": raw,
                        "headers": {**headers, "Content-Type": "application/json"},
                    },
                )
            yield (
                method,
                url,
                {
                    "body": b'{"x":"' + b"a" * (1024 * 1024 + 10) + b'"}',
                    "headers": headers,
                },
            )
            for name in properties:
                for value in WRONG_TYPES:
                    body = dict(valid_body(properties), **{name: value})
                    if name == "reply_to" and value is None:
                        continue  # documented as nullable
                    yield method, url, {"json": body, "headers": headers}
                for text in NASTY_STRINGS:
                    if path == "/user" and name in ("password", "current_password"):
                        continue  # a valid change of password is not bad input
                    body = dict(valid_body(properties), **{name: text})
                    yield method, url, {"json": body, "headers": headers}
            for name in required:
                body = valid_body(properties)
                body.pop(name, None)
                yield method, url, {"json": body, "headers": headers}
        if "{tweet_id}" in path:
            for bad in BAD_IDS:
                yield method, fill(path, world, tweet_id=bad), {"headers": headers}
        if "{username}" in path:
            for bad in NASTY_STRINGS[:12]:
                yield (
                    method,
                    fill(path, world, username=bad or "x"),
                    {"headers": headers},
                )
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        for name in names & set(BAD_QUERY):
            for bad in BAD_QUERY[name]:
                params = {name: bad}
                if "username" in names:
                    params["username"] = world["user"]
                yield method, url, {"params": params, "headers": headers}
        if "username" in names:
            for bad in NASTY_STRINGS[:12]:
                yield method, url, {"params": {"username": bad}, "headers": headers}


def test_every_malformed_request_gets_a_4xx_problem_and_changes_nothing(client, world):
    # Given every malformed request the OpenAPI document implies
    cases = list(bad_requests(world))
    assert len(cases) > 500
    failures = []
    # When each is sent
    for method, url, kwargs in cases:
        before = snapshot()
        r = client.simulate_request(method, url, **kwargs)
        ok_status = 400 <= r.status_code < 500 or (
            # harmless inputs on lenient fields may succeed (e.g. bio "*")
            r.status_code in (200, 201) and method in ("PUT", "PATCH", "POST")
        )
        if not ok_status:
            failures.append((method, url, r.status_code, r.text[:200]))
            continue
        if r.status_code >= 400:
            if r.headers.get("content-type") != "application/problem+json" or (
                not r.json.get("code")
            ):
                failures.append((method, url, r.status_code, "not a problem"))
            elif not unchanged(before, snapshot()):
                failures.append((method, url, r.status_code, "state changed"))
            elif any(w in r.text for w in ("Traceback", "psycopg", "SELECT", "peewee")):
                failures.append((method, url, r.status_code, "leaks internals"))
        else:
            # undo a lenient success so later cases start from the same world
            client.simulate_put(
                "/user",
                json={
                    "username": "bob",
                    "bio": "",
                    "display_name": "",
                    "email": "bob@example.com",
                },
                headers=world["headers"],
            )
    # Then each was a 4xx problem that changed and leaked nothing
    assert not failures, "\n".join(map(str, failures[:30]))


def test_missing_required_fields_are_422_missing_field(client, world):
    r = client.simulate_post("/auth/signup", json={"username": "x"})
    assert r.status_code == 422 and r.json["code"] == "missing_field"
    r = client.simulate_post("/tweet/create", json={}, headers=world["headers"])
    assert r.status_code == 422 and r.json["code"] == "missing_field"


def test_oversize_bodies_are_refused_before_parsing(client, world):
    r = client.simulate_post(
        "/tweet/create", body=b"x" * (1024 * 1024 + 1), headers=world["headers"]
    )
    assert r.status_code == 413 and r.json["code"] == "payload_too_large"


def test_unknown_routes_and_methods_are_problems(client):
    r = client.simulate_get("/nope")
    assert (
        r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    )
    r = client.simulate_request("PATCH", "/tweet/create")
    assert r.status_code == 405 and r.json["code"] == "method_not_allowed"


def test_text_rules(client, world):
    h = world["headers"]
    # When blank or over-long tweets are posted, then they are 422
    for content in ("   ", "\n\t", "a" * 281, "e\u0301" * 281):
        r = client.simulate_post(
            "/tweet/create", json={"tweet_content": content}, headers=h
        )
        assert r.status_code == 422, content
    # Then 280 code points after NFC fit: 280 decomposed é (560 code points)
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": "e\u0301" * 280}, headers=h
    )
    assert r.status_code == 201 and len(r.json["tweet_content"]) == 280


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "username",
                    "email",
                    "password",
                    "tweet_content",
                    "reply_to",
                    "bio",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=json_values,
    route=st.sampled_from(["/auth/signup", "/auth/login", "/tweet/create", "/user"]),
)
def test_arbitrary_json_never_causes_a_5xx(client, world, body, route):
    method = "PATCH" if route == "/user" else "POST"
    r = client.simulate_request(method, route, json=body, headers=world["headers"])
    assert r.status_code < 500, (body, r.text)


@pytest.mark.parametrize("lookalike", ["\u212aate", "KATE\u0307", "ka\u017fe", "kate "])
def test_a_lookalike_username_names_nobody_on_any_route(client, lookalike):
    # Given kate, with a tweet, and her timeline read once (the username cache warm)
    _, headers = user_with_token(client, username="kate")
    client.simulate_post("/tweet/create", json={"tweet_content": "hi"}, headers=headers)
    assert client.simulate_get("/timeline/user", params={"username": "kate"}).json[
        "data"
    ]
    # When a name that folds to "kate" (the Kelvin sign, a long s...) is asked for
    answers = [
        client.simulate_get("/timeline/user", params={"username": lookalike}),
        client.simulate_get(f"/user/data/{lookalike}"),
        client.simulate_get(f"/user/{lookalike}/followers"),
    ]
    # Then every route says there is no such user
    for r in answers:
        assert r.status_code == 404, r.text
        assert r.json["code"] == "user_not_found"
