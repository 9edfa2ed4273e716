"""The API process's own caches (core.local_cache) on the warm read path.

A big (pulled) author's timeline is reused for PULLED_CACHE_S: their new
tweets reach followers' homes that much later, but a deleted one is gone on
the very next request, and the author's own home is never stale. The clock
of the cache is the test's, so nothing here waits.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from falcon import testing

from api.app import create_app
from core.cached_pages import CachedPages
from core.local_cache import LocalCache
from tests.factories import user_with_token

TTL = 10.0


@pytest.fixture
def world(deps, clean, drain):
    """A client whose pages reuse big authors' timelines, the cache's clock,
    and a big author followed by as many users as the threshold asks."""
    now = [0.0]
    local = LocalCache(1000, TTL, timer=lambda: now[0])
    pages = CachedPages(deps.timelines, deps.pages.cache, deps.pages.keys, local)
    client = testing.TestClient(create_app(deps.settings, replace(deps, pages=pages)))
    big, big_headers = user_with_token(client)
    readers = [
        user_with_token(client)[1] for _ in range(deps.settings.fanout_threshold)
    ]
    for headers in readers:
        followed = client.simulate_post(
            "/user/follow", params={"username": big["username"]}, headers=headers
        )
        assert followed.status_code in (200, 201, 204), followed.text
    return client, now, big_headers, readers[0], drain


def _post(client, headers, text: str) -> str:
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": text}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json["id"]


def _warm(client, headers, drain) -> None:
    """Reads until the reader's home key and the big author's user key are
    rebuilt in Redis (each read from Postgres asks for one that lacks)."""
    for _ in range(3):
        drain()
        _home(client, headers)


def _home(client, headers) -> list[str]:
    r = client.simulate_get("/timeline/home", headers=headers)
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json["data"]]


def test_a_big_authors_timeline_is_reused_until_it_expires(world):
    client, now, big, reader, drain = world
    # Given the reader's home is cached and shows the big author's tweets
    first, second = _post(client, big, "one"), _post(client, big, "two")
    _warm(client, reader, drain)
    assert _home(client, reader) == [second, first]
    # When the big author posts again
    third = _post(client, big, "three")
    # Then their own home has it at once, the reader's only once the cache expires
    assert _home(client, big)[0] == third
    assert _home(client, reader) == [second, first]
    now[0] += TTL + 1
    assert _home(client, reader) == [third, second, first]


def test_a_deleted_tweet_of_a_big_author_is_gone_at_once(world):
    client, now, big, reader, drain = world
    # Given the reader's page was built from the big author's cached timeline
    first, second = _post(client, big, "one"), _post(client, big, "two")
    _warm(client, reader, drain)
    assert _home(client, reader) == [second, first]
    third = _post(client, big, "three")  # proves the cached timeline is in use
    # When the big author deletes a tweet the cached timeline still holds
    deleted = client.simulate_delete(f"/tweet/id/{second}/delete", headers=big)
    assert deleted.status_code in (200, 204), deleted.text
    # Then the very next page, and the ones after, no longer show it
    assert _home(client, reader) == [third, first]
    assert _home(client, reader) == [third, first]


def _user_timeline(client, headers, username) -> tuple[int, list[str]]:
    r = client.simulate_get(
        "/timeline/user", params={"username": username}, headers=headers
    )
    return r.status_code, [
        t["id"] for t in r.json["data"]
    ] if r.status_code == 200 else []


def test_a_username_taken_over_after_a_rename_shows_its_new_owner(world):
    client, _, _, reader, drain = world
    # Given a reader whose process has looked up "carol" (and so guesses her id)
    carol, carol_headers = user_with_token(client, username="carol")
    old = _post(client, carol_headers, "by the first carol")
    drain()
    for _ in range(2):
        assert _user_timeline(client, reader, "carol") == (200, [old])
    # When she renames and someone else signs up as "carol" and posts
    renamed = client.simulate_patch(
        "/user/", json={"username": "carol_was_here"}, headers=carol_headers
    )
    assert renamed.status_code == 200, renamed.text
    _, newcomer = user_with_token(client, username="carol", email="c2@example.com")
    new = _post(client, newcomer, "by the second carol")
    # Then "carol" is the newcomer's timeline at once, and the first's new name hers
    assert _user_timeline(client, reader, "carol") == (200, [new])
    assert _user_timeline(client, reader, "carol") == (200, [new])
    assert _user_timeline(client, reader, "carol_was_here") == (200, [old])


def test_a_deleted_accounts_username_is_unknown_at_once(world):
    client, _, _, reader, drain = world
    # Given a reader whose process has looked up "dave"
    _, dave = user_with_token(client, username="dave")
    _post(client, dave, "hello")
    drain()
    assert _user_timeline(client, reader, "dave")[0] == 200
    # When dave deletes his account
    assert client.simulate_delete("/user/", headers=dave).status_code == 204
    # Then his username is unknown on the very next read
    assert _user_timeline(client, reader, "dave")[0] == 404
