"""Cursors: a forged or out-of-range position is a 400, never a crash."""

from __future__ import annotations

import base64
import hmac

import pytest

from tests.factories import user_with_token

# Positions a forger can sign once the key is known (the placeholder is public).
OUT_OF_RANGE = ["-1", "0", str(1 << 63), str(1 << 64), "9" * 30, "+5", " 5", "1_0"]


def forged(secret: str, kind: str, owner, position: str) -> str:
    payload = f"{kind}:{owner}:{position}".encode()
    sig = hmac.digest(secret.encode(), payload, "sha256")[:12]
    return base64.urlsafe_b64encode(payload + sig).rstrip(b"=").decode()


@pytest.mark.parametrize("position", OUT_OF_RANGE)
def test_out_of_range_cursor_positions_are_400_on_every_list(
    client, settings, position
):
    # Given an account and cursors signed with the server's own key
    user, headers = user_with_token(client)
    owner, name = user["id"], user["username"]
    lists = {
        "home": ("/timeline/home", {}),
        "user": ("/timeline/user", {"username": name}),
        "followers": (f"/user/{name}/followers", {}),
        "following": (f"/user/{name}/following", {}),
    }
    for kind, (path, params) in lists.items():
        cursor = forged(settings.cursor_secret, kind, owner, position)
        # When a page is asked for with an impossible position
        r = client.simulate_get(
            path, params={**params, "cursor": cursor}, headers=headers
        )
        # Then it is refused as any bad cursor is
        assert r.status_code == 400, (kind, r.status_code, r.text)
        assert r.json["code"] == "invalid_cursor"


def test_an_in_range_forged_cursor_still_pages(client, settings):
    user, headers = user_with_token(client)
    # Given a cursor signed with the server's key, any position in range
    cursor = forged(settings.cursor_secret, "home", user["id"], str(1 << 62))
    # Then it pages
    r = client.simulate_get(
        "/timeline/home", params={"cursor": cursor}, headers=headers
    )
    assert r.status_code == 200


def test_the_placeholder_cursor_secret_is_refused_outside_development():
    from core.settings import PLACEHOLDER_SECRET, ConfigError, Settings

    for env in ("test", "production"):
        with pytest.raises(ConfigError, match="CURSOR_SECRET"):
            Settings.from_env({"APP_ENV": env})
        with pytest.raises(ConfigError, match="CURSOR_SECRET"):
            Settings.from_env({"APP_ENV": env, "CURSOR_SECRET": PLACEHOLDER_SECRET})
    assert Settings.from_env({"APP_ENV": "development"}).cursor_secret


def next_cursor(client, path, headers=None, **params) -> str:
    r = client.simulate_get(path, params={**params, "limit": 1}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json["next_cursor"], "the list should have a second page"
    return r.json["next_cursor"]


def assert_invalid_cursor(r) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json["code"] == "invalid_cursor"


def test_a_cursor_of_another_kind_of_list_is_refused(client):
    # Given bob's cursors of each list (same owner: only the kind differs)
    bob, b_h = user_with_token(client, username="bob")
    for name in ("alice", "carol"):
        _, h = user_with_token(client, username=name)
        client.simulate_post("/user/follow", params={"username": "bob"}, headers=h)
        client.simulate_post("/user/follow", params={"username": name}, headers=b_h)
    for n in range(2):
        client.simulate_post(
            "/tweet/create", json={"tweet_content": f"{n}"}, headers=b_h
        )
    lists = {
        "home": ("/timeline/home", {}),
        "user": ("/timeline/user", {"username": "bob"}),
        "followers": ("/user/bob/followers", {}),
        "following": ("/user/bob/following", {}),
    }
    cursors = {
        kind: next_cursor(client, path, b_h, **params)
        for kind, (path, params) in lists.items()
    }
    for used_on, (path, params) in lists.items():
        for kind, cursor in cursors.items():
            # When a cursor is used on a list of another kind
            r = client.simulate_get(
                path, params={**params, "cursor": cursor}, headers=b_h
            )
            # Then it is a 400 problem, as any cursor not issued for that list
            if kind == used_on:
                assert r.status_code == 200, (kind, r.text)
            else:
                assert_invalid_cursor(r)


@pytest.mark.parametrize("length", [200, 201])
def test_a_cursor_padded_to_the_length_limit_is_refused(client, length):
    # Given a cursor the server issued, and the same cursor padded with
    # characters base64 decoding would skip, to the limit and one over
    _, h = user_with_token(client)
    for n in range(2):
        client.simulate_post("/tweet/create", json={"tweet_content": f"{n}"}, headers=h)
    issued = next_cursor(client, "/timeline/home", h)
    padded = issued + "=" * (-len(issued) % 4) + "." * length
    padded = padded[:length]
    assert (
        client.simulate_get(
            "/timeline/home", params={"cursor": issued}, headers=h
        ).status_code
        == 200
    )
    # When the padded one is sent
    r = client.simulate_get("/timeline/home", params={"cursor": padded}, headers=h)
    # Then it is refused: it is not the cursor the server issued
    assert_invalid_cursor(r)
