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
    cursor = forged(settings.cursor_secret, "home", user["id"], str(1 << 62))
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
