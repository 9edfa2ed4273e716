"""The batched fan-out: one ``fanout_tweets`` message for the ordinary tweets
of a relay batch, pushed with two queries and one Redis round trip."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from core import fanout
from core.redis_client import Script
from core.timeline_store import PUSH_SOURCE
from tests.factories import user_with_token


def post(client, headers, text: str, request_id: str | None = None) -> int:
    extra = {"X-Request-ID": request_id} if request_id else {}
    r = client.simulate_post(
        "/tweet/create", json={"tweet_content": text}, headers={**headers, **extra}
    )
    assert r.status_code == 201, r.text
    return int(r.json["id"])


def follow(client, headers, username: str) -> None:
    client.simulate_post("/user/follow", params={"username": username}, headers=headers)


def test_a_batch_mixing_small_pulled_chunked_and_deleted_tweets(client, drain, deps):
    # Given (with the tests' threshold of 5) alice with 2 followers, carol with
    # 3 (chunked, at a chunk size of 2 below), big with 5 (pulled) and dave,
    # whose tweet is deleted; every follower's home is materialized
    users = {
        name: user_with_token(client, username=name)
        for name in ("alice", "carol", "big", "dave")
    }
    fans = [user_with_token(client) for _ in range(5)]
    for author, n in (("alice", 2), ("carol", 3), ("big", 5), ("dave", 1)):
        for _, h in fans[:n]:
            follow(client, h, author)
    for _, h in fans:
        client.simulate_get("/timeline/home", headers=h)
    ids = {name: post(client, h, f"from {name}") for name, (_, h) in users.items()}
    gone = ids["dave"]
    client.simulate_delete(f"/tweet/id/{gone}/delete", headers=users["dave"][1])
    drain()
    store = deps.timelines.store
    uid = {name: int(u["id"]) for name, (u, _) in users.items()}
    homes = [store.home_key(int(f["id"])) for f, _ in fans]
    own = [k for a in ("alice", "carol", "big") for k in _own_keys(store, uid[a])]

    def reset():  # as if nothing had been fanned out yet
        store.delete(homes + own)
        for key in homes + own:
            store.rebuild(key, [])

    def read(keys):
        return [[e[0] for e in t.entries()] for t in store.read(keys)]

    reset()
    # When the batch runs, with carol's followers more than a chunk
    small = dataclasses.replace(
        deps, settings=deps.settings.replace(fanout_chunk_size=2)
    )
    entries = [[ids[a], uid[a]] for a in ("alice", "carol", "big", "dave")]
    chunks = []
    fanout.fanout_tweets(small, entries, lambda *args: chunks.append(args))
    # Then alice's tweet is in her followers' homes, nothing of big's (pulled)
    # or dave's (deleted), and every live author's own keys have theirs
    assert read(homes) == [[ids["alice"]]] * 2 + [[]] * 3
    assert read(own) == [[ids[a]] for a in ("alice", "carol", "big") for _ in "hu"]
    # and carol's followers come in two chunks, which push to them
    follow_ids = [f for _, f in deps.timelines.followers(uid["carol"])]
    assert chunks == [
        (ids["carol"], uid["carol"], 0, follow_ids[1]),
        (ids["carol"], uid["carol"], follow_ids[1], follow_ids[2]),
    ]
    for args in chunks:
        fanout.fanout_chunk(small, *args)
    after = read(homes + own)
    assert after[:3] == [
        [ids["carol"], ids["alice"]],
        [ids["carol"], ids["alice"]],
        [ids["carol"]],
    ]
    # When the same batch is delivered again, nothing changes
    fanout.fanout_tweets(small, entries, lambda *args: None)
    assert read(homes + own) == after


def _own_keys(store, user_id: int) -> list[str]:
    return [store.home_key(user_id), store.user_key(user_id)]


def test_tweets_committed_together_go_out_in_one_message(
    client, drain, deps, worker, caplog
):
    # Given followers of three authors, with homes materialized
    authors = [user_with_token(client) for _ in range(3)]
    fans = [user_with_token(client) for _ in range(2)]
    for author, _ in authors:
        for _, h in fans:
            follow(client, h, author["username"])
    for _, h in fans:
        client.simulate_get("/timeline/home", headers=h)
    drain()
    caplog.set_level(logging.INFO, logger="workers.jobs")
    caplog.clear()
    # When they tweet while no relay runs, so that one batch takes them all
    with worker.paused():
        posted = [
            post(client, h, f"tweet {i}", request_id=f"req-batch-{i}")
            for i, (_, h) in enumerate(authors * 2)
        ]
    drain()
    # Then one fanout_tweets job pushed them all, listing the request ids
    jobs = caplog.records
    batch = [r for r in jobs if getattr(r, "actor", None) == "fanout_tweets"]
    assert len(batch) == 1 and batch[0].outcome == "ok"
    assert batch[0].request_ids == [f"req-batch-{i}" for i in range(6)]
    assert not [r for r in jobs if getattr(r, "actor", None) == "fanout_tweet"]
    store = deps.timelines.store
    for fan, _ in fans:
        home = store.read([store.home_key(int(fan["id"]))])[0]
        assert [e[0] for e in home.entries()] == sorted(posted, reverse=True)


def test_a_batch_pushes_even_when_redis_lost_the_script(
    client, drain, deps, monkeypatch
):
    # Given a follower's materialized home and a tweet, its fan-out undone
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    follow(client, b_h, "alice")
    client.simulate_get("/timeline/home", headers=b_h)
    tweet = post(client, a_h, "hi")
    drain()
    store = deps.timelines.store
    key = store.home_key(int(bob["id"]))
    store.delete([key])
    store.rebuild(key, [])
    # When the pipeline's EVALSHA finds no script (as after a Redis restart,
    # or on a newly promoted replica): a script no server has seen yet
    fresh = Script(deps.redis, PUSH_SOURCE + f"\n-- {uuid.uuid4()}")
    monkeypatch.setattr(store, "push_script", fresh)
    entries = [[tweet, int(alice["id"])], [tweet, int(alice["id"])]]
    assert fanout.fanout_tweets(deps, entries, lambda *a: None) == 1
    # Then the script is loaded and the (idempotent) pushes are redone
    assert [e[0] for e in store.read([key])[0].entries()] == [tweet]
