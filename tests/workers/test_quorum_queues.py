"""BROKER_QUEUE_TYPE=quorum: Dramatiq's queues are quorum queues and still work.

The rest of the worker suite runs on whichever type BROKER_QUEUE_TYPE names
(``BROKER_QUEUE_TYPE=quorum make test`` runs all of it on quorum queues); these
tests pin quorum queues down on every run, in queues of their own on the run's
vhost, so they never meet the suite's queues of the other type.
"""

from __future__ import annotations

import subprocess
import threading
import uuid

import dramatiq
import pytest

from core.settings import Settings
from tests.conftest import TEST_VHOST
from workers.broker import TypedQueueBroker, make_broker


def queue_types() -> dict[str, str]:
    """name -> type of every queue on the test vhost."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", TEST_VHOST, "name", "type"]
        + ["--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[parts[0]] = parts[1]
    return found


@pytest.fixture
def quorum_broker(settings):
    broker = make_broker(settings.replace(broker_queue_type="quorum"))
    yield broker
    broker.close()


def test_settings_choose_the_queue_type(settings):
    broker = make_broker(settings.replace(broker_queue_type="quorum"))
    assert isinstance(broker, TypedQueueBroker) and broker.queue_type == "quorum"
    with pytest.raises(Exception, match="BROKER_QUEUE_TYPE"):
        Settings.from_env({"BROKER_QUEUE_TYPE": "stream"})
    with pytest.raises(ValueError, match="x-max-priority"):
        TypedQueueBroker(url=settings.broker_dsn, queue_type="quorum", max_priority=9)


@pytest.mark.needs_rabbitmq
def test_quorum_queues_deliver_retry_and_dead_letter(quorum_broker):
    # Given an actor on a queue of its own, declared through the quorum broker
    queue = f"quorum_probe_{uuid.uuid4().hex[:8]}"
    done, attempts = [], []
    ran = threading.Event()

    def probe(value):
        attempts.append(value)
        if value == "fail":
            raise RuntimeError("always fails")
        done.append(value)
        ran.set()

    probe_actor = dramatiq.actor(
        probe,
        broker=quorum_broker,
        actor_name=queue,
        queue_name=queue,
        max_retries=1,
        min_backoff=10,
        max_backoff=20,
    )
    worker = dramatiq.Worker(quorum_broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        # When one message succeeds and one exhausts its retries
        probe_actor.send("ok")
        probe_actor.send("fail")
        assert ran.wait(20), "the quorum queue never delivered"
        quorum_broker.join(queue, timeout=30_000)
        worker.join()
    finally:
        worker.stop()

    # Then the queue, its delay queue and its dead-letter queue are quorum queues
    types = queue_types()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        assert types.get(name) == "quorum", name
    assert done == ["ok"]
    # and the failing message was retried once (through the delay queue), then
    # dead-lettered into .XQ, where `python -m workers.deadletters` finds it
    assert attempts.count("fail") == 2
    assert quorum_broker.get_queue_message_counts(queue) == (0, 0, 1)
