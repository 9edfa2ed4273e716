"""The outbox relay: batches confirmed once, rows deleted only when confirmed,
and writers wake a sleeping relay once, without ever leaving a job unseen."""

from __future__ import annotations

import collections
import select
import threading
import time

import psycopg2
import pytest
from dramatiq import Message

from core import db, outbox
from workers import relay as relay_module
from workers.broker import BatchPublisher
from workers.relay import OutboxRelay

SLOW_POLL_S = 30.0  # far longer than any wait below: only a NOTIFY wakes a relay


@pytest.fixture
def relay(settings, worker, clean):
    """A relay of our own, with the test worker (and its relay) stopped."""
    with worker.paused():
        relay = OutboxRelay(settings.replace(outbox_poll_s=SLOW_POLL_S), worker.broker)
        yield relay
        relay.close()


@pytest.fixture
def pg(settings):
    conns = []

    def connect(autocommit=True):
        conn = psycopg2.connect(settings.database_dsn)
        conn.autocommit = autocommit
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


# An outbox row written on a connection of the test's own (core.outbox writes
# through the peewee pool).
INSERT_JOB = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, args, options)"
    " VALUES (%(ob_message_id)s, %(ob_queue)s, %(ob_actor)s, %(ob_args)s,"
    " %(ob_options)s)"
)
# A claimed row, as the relay's cursor names it.
Row = collections.namedtuple(
    "Row", ["id", "message_id", "queue_name", "actor_name", "args", "options"]
)


def write_job(conn, tweet_id: int) -> str:
    """What a create does: an outbox row (and its trigger) in the caller's
    transaction. The tweet need not exist: its fan-out is then a no-op.
    Tweet 1 has a request id."""
    request_id = "req-1" if tweet_id == 1 else None
    params = outbox.job_params(outbox.FANOUT_TWEET, tweet_id, 1, request_id=request_id)
    with conn.cursor() as cur:
        cur.execute(INSERT_JOB, params)
    return params["ob_message_id"]


def write_other(conn, job, *args) -> str:
    params = outbox.job_params(job, *args)
    with conn.cursor() as cur:
        cur.execute(INSERT_JOB, params)
    return params["ob_message_id"]


def backlog(pg) -> list[tuple[str, int]]:
    with pg().cursor() as cur:
        cur.execute("SELECT message_id::text, attempts FROM outbox ORDER BY id")
        return cur.fetchall()


def set_idle(pg, idle: bool) -> None:
    with pg().cursor() as cur:
        cur.execute("UPDATE outbox_relay_state SET idle = %s", (idle,))


def take_all(broker, queue: str) -> list:
    channel = broker.connection.channel()
    try:
        got = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((properties, Message.decode(body)))
    finally:
        channel.close()


@pytest.mark.needs_rabbitmq
def test_a_batch_goes_out_as_dramatiq_would_send_it(relay, pg, worker):
    # Given five committed fan-outs and two other jobs
    ids = [write_job(pg(), n) for n in range(5)]
    others = [
        write_other(pg(), outbox.REPUSH_AUTHOR, 7),
        write_other(pg(), outbox.BACKFILL_FOLLOW, 1, 2),
    ]
    # When the relay runs once
    assert relay.relay_once() == 7
    # Then the five fan-outs are one fanout_tweets message on the fan-out
    # queue, persistent, with the first row's id; the others go as written,
    # and all the rows are gone
    sent = take_all(worker.broker, outbox.FANOUT_QUEUE)
    assert [(p.delivery_mode, m.actor_name, m.message_id) for p, m in sent] == [
        (2, outbox.FANOUT_TWEETS.actor_name, ids[0])
    ]
    assert [list(m.args) for _, m in sent] == [[[[n, 1] for n in range(5)]]]
    assert sent[0][1].options == {"request_ids": [None, "req-1", None, None, None]}
    timeline = take_all(worker.broker, outbox.TIMELINE_QUEUE)
    assert [(p.delivery_mode, m.message_id) for p, m in timeline] == [
        (2, i) for i in others
    ]
    assert [m.actor_name for _, m in timeline] == ["repush_author", "backfill_follow"]
    assert backlog(pg) == []


@pytest.mark.needs_rabbitmq
def test_a_batch_message_is_on_the_wire_what_enqueue_sends(worker, clean):
    # BatchPublisher mirrors RabbitmqBroker.enqueue (workers/broker.py): an
    # upgrade of Dramatiq that changes enqueue's wire format must fail here
    broker = worker.broker
    options = {"broker_priority": 1, "request_id": "r-9"}
    direct, batched = (
        Message(
            queue_name=outbox.TIMELINE_QUEUE,
            actor_name="repush_author",
            args=(7,),
            kwargs={},
            options=options,
            message_id=f"00000000-0000-0000-0000-00000000000{n}",
        )
        for n in (1, 2)
    )
    publisher = BatchPublisher(broker)
    with worker.paused():
        broker.enqueue(direct)
        try:
            assert publisher.publish([batched]) == [batched]
        finally:
            publisher.close()
        got = take_all(broker, outbox.TIMELINE_QUEUE)
    assert [m.message_id for _, m in got] == [direct.message_id, batched.message_id]
    (p1, m1), (p2, m2) = got
    assert (p2.delivery_mode, p2.priority) == (p1.delivery_mode, p1.priority)
    ours = {"message_id", "message_timestamp"}  # the two messages' own
    assert {k: v for k, v in m2.asdict().items() if k not in ours} == {
        k: v for k, v in m1.asdict().items() if k not in ours
    }


@pytest.mark.needs_rabbitmq
def test_a_lone_fanout_keeps_its_own_message(relay, pg, worker):
    # When the relay publishes a single fan-out job
    message_id = write_job(pg(), 3)
    assert relay.relay_once() == 1
    # Then it goes out as its own message, its id kept
    sent = take_all(worker.broker, outbox.FANOUT_QUEUE)
    assert [(m.actor_name, m.message_id, list(m.args)) for _, m in sent] == [
        (outbox.FANOUT_TWEET.actor_name, message_id, [3, 1])
    ]


def test_a_batch_of_fanouts_is_split_at_the_message_limit(monkeypatch):
    monkeypatch.setattr(relay_module, "FANOUT_BATCH_MAX", 2)
    # When five fan-out rows are batched, at most two a message
    rows = [Row(n, f"m{n}", "fanout", "fanout_tweet", [n, 1], {}) for n in range(1, 6)]
    got = relay_module.messages(rows)
    # Then they go out as two batches and one lone message
    assert [(m.actor_name, m.message_id, r) for m, r in got] == [
        ("fanout_tweets", "m1", [1, 2]),
        ("fanout_tweets", "m3", [3, 4]),
        ("fanout_tweet", "m5", [5]),
    ]
    assert got[0][0].options == {}  # no request ids: none listed


@pytest.mark.needs_rabbitmq
def test_a_vanished_queue_keeps_the_rows_until_it_is_declared_again(relay, pg, worker):
    # Given the relay has published once (the queue is known to exist)
    write_job(pg(), 1)
    assert relay.relay_once() == 1
    take_all(worker.broker, outbox.FANOUT_QUEUE)
    # When the queue is deleted behind the broker's back
    channel = worker.broker.connection.channel()
    channel.queue_delete(outbox.FANOUT_QUEUE)
    channel.close()
    message_id = write_job(pg(), 2)
    # Then the unroutable job stays in the outbox, backed off
    assert relay.relay_once() == 0
    assert backlog(pg) == [(message_id, 1)]
    # and the next attempt declares the queue again and delivers it
    with pg().cursor() as cur:
        cur.execute("UPDATE outbox SET available_at = now()")
    assert relay.relay_once() == 1
    assert [m.message_id for _, m in take_all(worker.broker, "fanout")] == [message_id]
    assert backlog(pg) == []


def notified(listener, wait_s: float) -> bool:
    if select.select([listener], [], [], wait_s)[0]:
        listener.poll()
    got = bool(listener.notifies)
    listener.notifies.clear()
    return got


def test_writers_wake_a_sleeping_relay_once(relay, pg):
    # Given a listener on the relay's channel
    listener = pg()
    with listener.cursor() as cur:
        cur.execute("LISTEN outbox")
    # When a job is written while the relay is busy, nobody is woken
    set_idle(pg, False)
    write_job(pg(), 1)
    assert not notified(listener, 0.5), "a busy relay needs no wake-up"
    # When the relay sleeps, the next job wakes it, once
    set_idle(pg, True)
    write_job(pg(), 2)
    assert notified(listener, 5)
    # Then the job after that does not notify again
    write_job(pg(), 3)
    assert not notified(listener, 0.5), "woken once, not on every commit"


def test_a_job_committed_as_the_relay_falls_asleep_is_not_left_behind(relay, pg):
    # Given a busy relay (no notifications) and a create whose trigger has
    # read the flag but which has not committed yet
    set_idle(pg, False)
    writer = pg(autocommit=False)
    message_id = write_job(writer, 1)
    # When the relay goes to sleep (a 30 s poll: only the barrier or a
    # NOTIFY can make it look again in time)
    woke = []
    listener = relay.listen()
    sleeper = threading.Thread(target=lambda: woke.append(relay.sleep(listener)))
    sleeper.start()
    try:
        time.sleep(0.5)
        # Then it waits for that writer before its last look
        assert sleeper.is_alive(), "the relay fell asleep past an open create"
    finally:
        writer.commit()
        sleeper.join(5)
        listener.close()
    # and relays the job as soon as it commits, without waiting for a poll
    assert not sleeper.is_alive() and woke == [True]
    assert backlog(pg) == [], f"{message_id} left behind"


def test_a_sleeping_relay_wakes_on_the_next_job(relay, pg):
    # Given a relay asleep on LISTEN, with nothing to do
    listener = relay.listen()
    woke = []
    sleeper = threading.Thread(target=lambda: woke.append(relay.sleep(listener)))
    sleeper.start()
    time.sleep(0.5)  # asleep on LISTEN, with nothing to do
    assert sleeper.is_alive()
    # When a job is written
    write_job(pg(), 1)
    # Then it wakes and relays it, long before its 30 s poll
    sleeper.join(5)
    listener.close()
    assert not sleeper.is_alive() and woke == [True]
    assert backlog(pg) == []


def test_no_job_is_lost_when_publishing_fails(relay, pg, monkeypatch):
    # Given the broker refuses a batch
    def refuse(publisher, messages):
        raise ConnectionError("broker away")

    monkeypatch.setattr(BatchPublisher, "publish", refuse)
    ids = [write_job(pg(), n) for n in range(3)]
    # Then every row stays, backed off, and none is deleted
    assert relay.relay_once() == 0
    assert backlog(pg) == [(i, 1) for i in ids]
    with db.database.connection_context():
        assert outbox.backlog()[0] == 3
