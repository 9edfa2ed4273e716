"""Home timelines are kept for active users only (INACTIVE_DAYS).

An inactive follower gets no fan-out writes; when they come back their first
page comes from Postgres at once, their home is rebuilt by a worker, and from
then on they are pushed to again -- the oracle holding at every step.
"""

from __future__ import annotations

from core.db import database
from tests.factories import user_with_token
from tests.support import counter_value
from tests.support import postgres_home as home_oracle


def _entries(deps, user) -> list[int] | None:
    store = deps.timelines.store
    timeline = store.read([store.home_key(int(user["id"]))])[0]
    return None if timeline is None else [e[0] for e in timeline.entries()]


def _post(client, headers, text) -> int:
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": text}, headers=headers
    )
    assert r.status_code == 201, r.text
    return int(r.json["id"])


def _home_ids(client, headers) -> list[int]:
    r = client.simulate_get("/timeline/home", headers=headers)
    assert r.status_code == 200, r.text
    return [int(t["id"]) for t in r.json["data"]]


def _make_inactive(deps, user, days: int) -> None:
    database.execute_sql(
        "UPDATE users SET active_at = now() - make_interval(days => %s) WHERE id = %s",
        (days, int(user["id"])),
    )
    database.close()
    deps.redis.delete(deps.timelines.store.keys.seen(int(user["id"])))


def _postgres_pages() -> float:
    return counter_value("timeline_postgres_pages", kind="home")


def test_inactive_followers_are_skipped_and_rebuilt_when_they_return(
    client, drain, deps
):
    # Given bob and carol follow alice and have read their homes
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    carol, c_h = user_with_token(client, username="carol")
    for h in (b_h, c_h):
        client.simulate_post("/user/follow", params={"username": "alice"}, headers=h)
        _home_ids(client, h)
    drain()
    assert _entries(deps, bob) == _entries(deps, carol) == []
    # and bob has not been seen for longer than INACTIVE_DAYS (his key outlived it)
    _make_inactive(deps, bob, deps.settings.inactive_days + 1)

    # When alice posts
    first = _post(client, a_h, "while bob was away")
    drain()
    # Then carol's home gets the tweet and bob's does not (no fan-out write)
    assert _entries(deps, carol) == [first]
    assert _entries(deps, bob) == []

    # When bob comes back, his first page is Postgres's, at once
    before = _postgres_pages()
    assert _home_ids(client, b_h) == home_oracle(int(bob["id"])) == [first]
    assert _postgres_pages() > before
    # and a worker rebuilds his home, which then serves his reads
    drain()
    assert _entries(deps, bob) == [first]
    assert _home_ids(client, b_h) == [first]

    # and he is pushed to again, the oracle holding
    second = _post(client, a_h, "bob is back")
    drain()
    assert _entries(deps, bob) == [second, first]
    assert _home_ids(client, b_h) == home_oracle(int(bob["id"])) == [second, first]


def test_a_home_dropped_while_inactive_is_served_from_postgres_then_rebuilt(
    client, drain, deps
):
    # Given bob follows alice, then is inactive long enough for his key to go
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    _home_ids(client, b_h)
    drain()
    _make_inactive(deps, bob, deps.settings.inactive_days * 2)
    deps.timelines.store.delete([deps.timelines.store.home_key(int(bob["id"]))])
    posted = [_post(client, a_h, f"t{n}") for n in range(3)]
    drain()
    assert _entries(deps, bob) is None  # nothing was written for him
    # When he reads, then the page is the oracle's, and his home is rebuilt
    assert _home_ids(client, b_h) == home_oracle(int(bob["id"])) == posted[::-1]
    drain()
    assert _entries(deps, bob) == posted[::-1]
