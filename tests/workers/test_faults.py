"""Fault tests: redelivery, a worker killed mid-fan-out, the broker unreachable.

Faults are injected without collateral: our own worker process is killed, and
the broker is "down" behind a TCP proxy we cut; the machine's services stay up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from falcon import testing

from core import container, db, fanout, outbox
from core.timeline_store import Timeline
from core.timelines import HOME
from tests.factories import user_with_token
from tests.support import TcpProxy, counter_value, timeline_ids

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG = "100000"  # threshold for these tests: every author is pushed


@pytest.fixture
def push_deps(deps):
    """Collaborators whose threshold pushes even big follower lists."""
    return container.build(deps.settings.replace(fanout_threshold=int(BIG)))


@pytest.fixture
def push_client(push_deps, clean):
    from api.app import create_app

    return testing.TestClient(create_app(push_deps.settings, push_deps))


def start_worker(**env) -> subprocess.Popen:
    """A real `dramatiq workers.main` process (its own session, so we can kill it)."""
    full_env = dict(os.environ, FANOUT_THRESHOLD=BIG, **env)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "workers.main",
            "-p",
            "1",
            "-t",
            "2",
            "--worker-shutdown-timeout",
            "2000",
        ],
        cwd=ROOT,
        env=full_env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    proc.wait(30)


def bulk_followers(author_id: int, count: int, deps) -> list[int]:
    """Followers inserted straight into Postgres, homes materialized empty."""
    ids = [deps.ids.next_id() for _ in range(count)]
    with db.database.atomic():
        db.database.execute_sql(
            "INSERT INTO users (id, username, email, password_hash)"
            " SELECT i, 'f' || i, 'f' || i || '@example.com', 'x'"
            " FROM unnest(%s::bigint[]) AS i",
            (ids,),
        )
        db.database.execute_sql(
            "INSERT INTO follows (follower_id, followee_id, id)"
            " SELECT i, %s, i FROM unnest(%s::bigint[]) AS i",
            (author_id, ids),
        )
    store = deps.timelines.store
    for follower in ids:
        store.rebuild(store.home_key(follower), [])
    db.database.close()
    return ids


def homes(deps, followers: list[int]) -> list[Timeline | None]:
    store = deps.timelines.store
    return store.read([store.home_key(f) for f in followers])


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def all_delivered(deps, followers, tweet_ids) -> bool:
    expected = sorted(tweet_ids, reverse=True)
    for timeline in homes(deps, followers):
        if timeline is None or [e[0] for e in timeline.entries()] != expected:
            return False
    return True


def test_redelivered_fanout_changes_nothing(client, drain, deps):
    # Given a tweet fanned out to materialized homes
    alice, a_h = user_with_token(client, username="alice")
    fans = bulk_followers(int(alice["id"]), 3, deps)
    tweet = client.simulate_post(
        "/tweet/create", json={"tweet_content": "once"}, headers=a_h
    ).json
    drain()
    before = [t.raw for t in homes(deps, fans)]
    # When the same fan-out message is processed again (a redelivery)
    fanout.fanout_tweet(
        deps, int(tweet["id"]), int(alice["id"]), send_chunk=lambda *a: None
    )
    # Then nothing changed, byte for byte
    assert [t.raw for t in homes(deps, fans)] == before
    assert all(len(t) == 1 for t in homes(deps, fans))


def follower_with_cached_home(client, drain, deps):
    """alice, bob (following her, his home cached in Redis with her tweet,
    parts warm) and the tweet."""
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    tweet = int(
        client.simulate_post(
            "/tweet/create", json={"tweet_content": "hi"}, headers=a_h
        ).json["id"]
    )
    client.simulate_get("/timeline/home", headers=b_h)  # its key is rebuilt
    drain()
    client.simulate_get("/timeline/home", headers=b_h)  # its parts are cached
    assert timeline_ids(deps, HOME, int(bob["id"])) == [tweet]
    return (alice, a_h), (bob, b_h), tweet


def late_push(deps, bob, alice, tweet) -> None:
    """A fan-out that read alice's followers before bob's unfollow lands after
    it (and after the unfollow's strip): the tweet is back in bob's home key."""
    store = deps.timelines.store
    store.push([store.home_key(int(bob["id"]))], [(tweet, int(alice["id"]))])
    assert timeline_ids(deps, HOME, int(bob["id"])) == [tweet]


def test_fanout_landing_after_unfollow_stays_invisible(client, drain, deps):
    # Given bob follows alice and has read his home: it is cached in Redis
    (alice, _), (bob, b_h), tweet = follower_with_cached_home(client, drain, deps)
    # When bob unfollows and a late fan-out puts alice's tweet back in his key
    client.simulate_post("/user/unfollow", params={"username": "alice"}, headers=b_h)
    drain()
    late_push(deps, bob, alice, tweet)
    # Then bob's home, served from the cache, still does not show it
    served = counter_value("read_cache_pages")
    home = client.simulate_get("/timeline/home", headers=b_h).json["data"]
    assert str(tweet) not in [t["id"] for t in home]
    assert counter_value("read_cache_pages") == served + 1, "not the cached path"


def test_fanout_landing_after_unfollow_stays_invisible_the_long_way(
    client, drain, deps
):
    # Given bob follows alice and his home key holds her tweet
    (alice, _), (bob, b_h), tweet = follower_with_cached_home(client, drain, deps)
    # When bob unfollows and a late fan-out puts the tweet back in his key
    client.simulate_post("/user/unfollow", params={"username": "alice"}, headers=b_h)
    drain()
    late_push(deps, bob, alice, tweet)
    # Then a page read the long way (the key's entries, checked against
    # Postgres, not the read cache and not the Postgres-only page) hides it
    from_postgres = counter_value("timeline_postgres_pages", kind=HOME)
    page = deps.timelines.home_page(int(bob["id"]), None, 0, 20, int(bob["id"]))
    assert tweet not in [int(t["id"]) for t in page]
    assert counter_value("timeline_postgres_pages", kind=HOME) == from_postgres


def test_fanout_redelivered_after_unfollow_skips_the_old_follower(client, drain, deps):
    # Given bob follows alice and his home key holds her tweet
    (alice, _), (bob, b_h), tweet = follower_with_cached_home(client, drain, deps)
    # When bob unfollows and alice's fan-out message is delivered again
    client.simulate_post("/user/unfollow", params={"username": "alice"}, headers=b_h)
    drain()
    fanout.fanout_tweet(deps, tweet, int(alice["id"]), send_chunk=lambda *a: None)
    # Then the fan-out, reading today's followers, did not push to bob
    assert timeline_ids(deps, HOME, int(bob["id"])) == []


def test_worker_killed_mid_fanout_loses_nothing(push_client, push_deps, worker):
    with worker.paused():
        # Given an author with 600 followers, fanned out in chunks of 20
        author, a_h = user_with_token(push_client, username="celebrity")
        fans = bulk_followers(int(author["id"]), 600, push_deps)
        tweet_ids = []
        for n in range(8):
            r = push_client.simulate_post(
                "/tweet/create", json={"tweet_content": f"t{n}"}, headers=a_h
            )
            tweet_ids.append(int(r.json["id"]))
        proc = start_worker(FANOUT_CHUNK_SIZE="20")
        try:
            # When the worker is SIGKILLed once the fan-out is under way
            wait_for(
                lambda: any(t and len(t) for t in homes(push_deps, fans)),
                60,
                "fan-out to start",
            )
            kill(proc)
            assert not all_delivered(push_deps, fans, tweet_ids), (
                "the fan-out finished before the kill; the test proves nothing"
            )
            # Then a restarted worker completes it: every home has every tweet once
            proc = start_worker(FANOUT_CHUNK_SIZE="20")
            wait_for(
                lambda: all_delivered(push_deps, fans, tweet_ids),
                90,
                "every follower to have every tweet exactly once",
            )
        finally:
            kill(proc)
        with db.database.connection_context():
            assert outbox.backlog()[0] == 0


@pytest.mark.needs_rabbitmq
def test_broker_down_while_posting_then_everything_arrives(
    push_client, push_deps, worker, settings
):
    with worker.paused():
        proxy = TcpProxy(5672)
        vhost = settings.broker_url.rsplit("/", 1)[1]
        proc = start_worker(
            BROKER_URL=f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}"
        )
        try:
            author, a_h = user_with_token(push_client, username="poster")
            fans = bulk_followers(int(author["id"]), 30, push_deps)
            # Given the broker is unreachable
            proxy.cut()
            # When tweets are posted, the API still answers 201
            tweet_ids = []
            for n in range(5):
                r = push_client.simulate_post(
                    "/tweet/create", json={"tweet_content": f"down {n}"}, headers=a_h
                )
                assert r.status_code == 201
                tweet_ids.append(int(r.json["id"]))
            time.sleep(1.5)
            with db.database.connection_context():
                assert outbox.backlog()[0] == 5, "jobs should wait in the outbox"
            # Then once the broker is back every tweet reaches every follower
            proxy.restore()
            wait_for(
                lambda: all_delivered(push_deps, fans, tweet_ids),
                90,
                "delivery after the broker came back",
            )
        finally:
            kill(proc)
            proxy.cut()
