"""Every way a token can be wrong is refused with 401; sessions end when they should."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from core import keyfiles
from core.tokens import TokenCodec
from tests.factories import auth_header, login, signup

PROTECTED = ("GET", "/timeline/home")


@pytest.fixture
def account(client):
    user = signup(client, username="victim")
    pair = login(client, "victim")
    return user, pair


def claims_for(settings, user_id: str, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j" * 32,
        "typ": "access",
        "fam": "f" * 32,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(settings, claims: dict, key=None, alg="RS256", kid=None) -> str:
    private = key or keyfiles.load_private_key(settings.jwt_private_key_path)
    kid = kid or keyfiles.key_id(private.public_key())
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refused(client, token: str, via_cookie: bool = False) -> bool:
    kwargs = (
        {"cookies": {"access-Token": token}}
        if via_cookie
        else {"headers": auth_header(token)}
    )
    result = client.simulate_request(*PROTECTED, **kwargs)
    if result.status_code != 401:
        assert result.status_code == 200, result.text
        return False
    assert result.headers["content-type"] == "application/problem+json"
    assert result.headers["www-authenticate"].startswith("Bearer")
    return True


def refresh_status(client, refresh_token: str) -> int:
    return client.simulate_post(
        "/auth/refresh-token", json={"refresh_token": refresh_token}
    ).status_code


def test_a_valid_token_works_in_header_and_cookie(client, account):
    _, pair = account
    assert not refused(client, pair["access_token"])
    assert not refused(client, pair["access_token"], via_cookie=True)


def test_alg_none_is_refused(client, account, settings):
    user, _ = account
    # Given an unsigned token (alg: none) for a real account
    body = b64(claims_for(settings, user["id"]))
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{body}."
    # Then it is refused in a header and in a cookie
    assert refused(client, token) and refused(client, token, via_cookie=True)


def test_hs256_signed_with_the_public_key_is_refused(client, account, settings):
    user, _ = account
    # Given a token signed HS256 with the public key as the secret
    kid, public = next(
        iter(keyfiles.load_public_keys(settings.jwt_public_keys_path).items())
    )
    header = b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = b64(claims_for(settings, user["id"]))
    import hashlib
    import hmac

    secret = keyfiles.public_pem(public)
    sig = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    # Then it is refused
    assert refused(client, token)


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"typ": "refresh"},
        {"exp": None},
        {"jti": None},
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "refresh-type",
        "no-exp",
        "no-jti",
    ],
)
def test_bad_claims_are_refused(client, account, settings, overrides):
    user, _ = account
    assert refused(
        client, sign(settings, claims_for(settings, user["id"], **overrides))
    )


def test_tampered_payload_is_refused(client, account, settings):
    victim, pair = account
    # Given a real token whose payload is swapped for another user's
    other = signup(client, username="other")
    header, _, signature = pair["access_token"].split(".")
    forged = b64(claims_for(settings, other["id"]))
    # Then its signature no longer matches: refused
    assert refused(client, f"{header}.{forged}.{signature}")


def test_unknown_kid_and_unknown_key_are_refused(client, account, settings):
    user, _ = account
    # Given tokens signed by a key the server does not know
    stranger = keyfiles.generate_private_key()
    claims = claims_for(settings, user["id"])
    # Then they are refused, without a kid or with the real key's
    assert refused(client, sign(settings, claims, key=stranger))
    assert refused(
        client,
        sign(
            settings,
            claims,
            key=stranger,
            kid=keyfiles.key_id(
                keyfiles.load_private_key(settings.jwt_private_key_path).public_key()
            ),
        ),
    )


def test_refresh_token_is_not_an_access_token(client, account):
    _, pair = account
    assert refused(client, pair["refresh_token"])
    assert refused(client, pair["refresh_token"], via_cookie=True)


def test_garbage_and_wrong_scheme_are_refused(client, account):
    for header in ("Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Token abc"):
        r = client.simulate_get("/timeline/home", headers={"Authorization": header})
        assert r.status_code == 401, header
    assert refused(client, "x" * 5000)


def test_refresh_rotates_and_reuse_revokes_the_family(client, account):
    _, pair = account
    # When the refresh token is used
    first = client.simulate_post(
        "/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
    )
    # Then it is rotated, and the new access token works
    assert first.status_code == 200
    new = first.json
    assert new["refresh_token"] != pair["refresh_token"]
    assert not refused(client, new["access_token"])
    # When the spent token is presented again (theft)
    again = client.simulate_post(
        "/auth/refresh-token", json={"refresh_token": pair["refresh_token"]}
    )
    # Then the whole family dies
    assert again.status_code == 401 and again.json["code"] == "token_reused"
    assert refused(client, new["access_token"])
    assert refused(client, pair["access_token"])
    assert refresh_status(client, new["refresh_token"]) == 401


def test_refresh_from_cookie(client, account):
    _, pair = account
    r = client.simulate_post(
        "/auth/refresh-token", cookies={"refresh-Token": pair["refresh_token"]}
    )
    assert r.status_code == 200 and r.json["token_type"] == "Bearer"


def test_logout_stops_access_and_refresh_at_once(client, account):
    _, pair = account
    # When the user logs out
    r = client.simulate_post("/auth/logout", headers=auth_header(pair["access_token"]))
    assert r.status_code == 204
    # Then neither token works any more
    assert refused(client, pair["access_token"])
    assert refresh_status(client, pair["refresh_token"]) == 401


def test_revocations_survive_a_redis_flush(client, account, deps):
    from tests.support import clear_redis_prefix

    _, pair = account
    # Given a logged-out token
    client.simulate_post("/auth/logout", headers=auth_header(pair["access_token"]))
    # When Redis loses every key
    clear_redis_prefix(deps.redis)
    # Then the revocation still holds
    assert refused(client, pair["access_token"])


def test_deleted_users_tokens_are_refused(client, account):
    _, pair = account
    # When the account is deleted
    assert (
        client.simulate_delete(
            "/user", headers=auth_header(pair["access_token"])
        ).status_code
        == 204
    )
    # Then its tokens are refused
    assert refused(client, pair["access_token"])
    assert refresh_status(client, pair["refresh_token"]) == 401


def test_login_failure_does_not_reveal_whether_the_user_exists(client, account):
    # When logging in with a wrong password, and with an unknown name
    wrong = client.simulate_post(
        "/auth/login", json={"username": "victim", "password": "nope-nope"}
    )
    unknown = client.simulate_post(
        "/auth/login", json={"username": "ghost", "password": "nope-nope"}
    )
    # Then both answers are the same
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json


def test_password_change_ends_other_sessions_but_not_this_one(client, account):
    _, here = account
    # Given two sessions
    elsewhere = login(client, "victim")
    # When the password is changed in one
    r = client.simulate_put(
        "/user",
        headers=auth_header(here["access_token"]),
        json={"password": "brand-new-pass", "current_password": "password123"},
    )
    assert r.status_code == 200, r.text
    # Then the other ends, this one goes on, the new password logs in
    assert refused(client, elsewhere["access_token"])
    assert refresh_status(client, elsewhere["refresh_token"]) == 401
    assert not refused(client, here["access_token"])
    assert login(client, "victim", "brand-new-pass")["access_token"]


def test_password_change_needs_the_current_password(client, account):
    _, pair = account
    h = auth_header(pair["access_token"])
    # When the password is changed without the current one
    missing = client.simulate_put("/user", headers=h, json={"password": "another-1"})
    # Then it is refused, and with a wrong one as well
    assert missing.status_code == 422 and missing.json["code"] == "missing_field"
    wrong = client.simulate_put(
        "/user",
        headers=h,
        json={"password": "another-1", "current_password": "not-it-at-all"},
    )
    assert wrong.status_code == 403 and wrong.json["code"] == "wrong_password"


def test_jwks_publishes_every_accepted_key_and_old_keys_keep_working(
    client, account, settings
):
    # Given the published keys: the signing key's public half only
    keys = client.simulate_get("/.well-known/jwks.json").json["keys"]
    private = keyfiles.load_private_key(settings.jwt_private_key_path)
    assert [k["kid"] for k in keys] == [keyfiles.key_id(private.public_key())]
    assert keys[0]["alg"] == "RS256" and "d" not in keys[0]
    # When a new signing key is rotated in (the old public key kept)
    new_key = keyfiles.generate_private_key()
    rotated = TokenCodec(
        settings, new_key, keyfiles.load_public_keys(settings.jwt_public_keys_path)
    )
    _, pair = account
    # Then old tokens still verify, and both keys are published
    assert rotated.verify(pair["access_token"], "access").user_id == int(
        account[0]["id"]
    )
    assert len(rotated.jwks()["keys"]) == 2


def test_tokens_name_the_user_by_id_so_a_rename_keeps_them(client, account):
    _, pair = account
    h = auth_header(pair["access_token"])
    # When the user is renamed
    assert (
        client.simulate_patch(
            "/user", headers=h, json={"username": "renamed"}
        ).status_code
        == 200
    )
    # Then the same token still names them
    assert client.simulate_get("/user", headers=h).json["username"] == "renamed"


@pytest.mark.parametrize("flush", [False, True])
def test_revoked_tokens_are_refused_on_warm_timeline_pages(
    client, account, deps, flush
):
    # The page script checks revocation itself on the hot read routes: warm
    # every cache first so that the script, not the long path, answers.
    from tests.support import clear_redis_prefix

    user, pair = account
    h = auth_header(pair["access_token"])
    # Given every cache of the hot read routes warm
    client.simulate_post("/tweet/create", json={"tweet_content": "x"}, headers=h)
    reads = [
        ("/timeline/home", {}),
        ("/timeline/user", {"username": "victim"}),
    ]
    for path, params in reads * 2:
        assert client.simulate_get(path, params=params, headers=h).status_code == 200
    # When the token is revoked (and Redis perhaps flushed)
    client.simulate_post("/auth/logout", headers=h)
    if flush:
        clear_redis_prefix(deps.redis)
    # Then every read refuses it first, whatever else is wrong
    for path, params in reads:
        for extra in ({}, {"cursor": "garbage"}, {"limit": "0"}):
            r = client.simulate_get(path, params={**params, **extra}, headers=h)
            assert r.status_code == 401, (path, extra, r.text)
            assert r.json["code"] == "token_revoked"
    assert (
        client.simulate_get(
            "/timeline/user", params={"username": "nobody"}, headers=h
        ).status_code
        == 401
    )


def test_token_responses_are_never_cached(client, account):
    # When tokens are issued by a login and by a refresh
    login_r = client.simulate_post(
        "/auth/login", json={"username": "victim", "password": "password123"}
    )
    refresh_r = client.simulate_post(
        "/auth/refresh-token", json={"refresh_token": login_r.json["refresh_token"]}
    )
    # Then no cache may keep them
    for r in (login_r, refresh_r):
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["pragma"] == "no-cache"


def test_cookies_are_secure_whenever_the_client_came_over_https(client, account):
    body = {"username": "victim", "password": "password123"}
    # When logging in over plain HTTP, the cookies are not Secure
    plain = client.simulate_post("/auth/login", json=body)
    assert not plain.cookies["access-Token"].secure
    # When over TLS at the server itself
    direct = client.simulate_post("/auth/login", json=body, protocol="https")
    # or behind a trusted proxy that terminated TLS (the peer is loopback)
    proxied = client.simulate_post(
        "/auth/login", json=body, headers={"X-Forwarded-Proto": "https"}
    )
    # Then they are Secure
    for r in (direct, proxied):
        assert r.cookies["access-Token"].secure and r.cookies["refresh-Token"].secure
    # but an untrusted peer cannot claim it
    spoofed = client.simulate_post(
        "/auth/login",
        json=body,
        headers={"X-Forwarded-Proto": "https"},
        remote_addr="203.0.113.9",
    )
    assert not spoofed.cookies["access-Token"].secure


def test_login_refuses_an_over_long_password_without_hashing(
    client, account, deps, monkeypatch
):
    # Given a count of password checks
    hashed = []
    real = type(deps.passwords).verify
    monkeypatch.setattr(
        type(deps.passwords),
        "verify",
        lambda self, *a: hashed.append(1) or real(self, *a),
    )
    # When a 129-character password is sent, it is refused unhashed
    r = client.simulate_post(
        "/auth/login", json={"username": "victim", "password": "x" * 129}
    )
    assert r.status_code == 422 and r.json["code"] == "invalid_password"
    assert hashed == []
    # Then 128 characters is still a (wrong) password worth checking
    r = client.simulate_post(
        "/auth/login", json={"username": "victim", "password": "x" * 128}
    )
    assert r.status_code == 401 and hashed == [1]
