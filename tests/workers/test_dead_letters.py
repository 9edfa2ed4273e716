"""A job that exhausts its retries is dead-lettered, listed, and replayed."""

from __future__ import annotations

import socket

import pytest
from dramatiq import Message

from core import container
from tests.factories import user_with_token
from workers import deadletters
from workers import deps as worker_deps


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.needs_rabbitmq
def test_dead_lettered_fanout_can_be_inspected_and_replayed(
    client, drain, deps, worker
):
    # Given bob reads alice's tweet from his materialized home
    alice, a_h = user_with_token(client, username="alice")
    bob, b_h = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=b_h)
    client.simulate_get("/timeline/home", headers=b_h)
    tweet = client.simulate_post(
        "/tweet/create", json={"tweet_content": "hi"}, headers=a_h
    ).json
    drain()
    store = deps.timelines.store
    bob_home = store.home_key(int(bob["id"]))
    store.remove_ids([bob_home], [int(tweet["id"])])
    # When its fan-out runs while Redis is unreachable and retries run out
    broken = container.build(
        deps.settings.replace(
            redis_url=f"redis://127.0.0.1:{closed_port()}/15",
            redis_mode="single",
            node_id=1,
        ),
        tokens=False,
    )
    worker_deps.use(broken)
    try:
        sent = worker.broker.enqueue(
            Message(
                queue_name="fanout",
                actor_name="fanout_tweet",
                args=(int(tweet["id"]), int(alice["id"])),
                kwargs={},
                options={"max_retries": 0},
            )
        )
        drain()
    finally:
        worker_deps.use(deps)
    # Then an operator sees it in the dead-letter queue
    dead = deadletters.peek(worker.broker, "fanout")
    assert [(m.message_id, m.actor_name, list(m.args)) for m in dead] == [
        (sent.message_id, "fanout_tweet", [int(tweet["id"]), int(alice["id"])])
    ]
    assert len(deadletters.peek(worker.broker, "fanout")) == 1  # peeking kept it
    # and replaying it once Redis is back completes the fan-out
    assert deadletters.replay(worker.broker, "fanout") == 1
    drain()
    assert deadletters.peek(worker.broker, "fanout") == []
    entries = [e[0] for e in store.read([bob_home])[0].entries()]
    assert entries == [int(tweet["id"])]
