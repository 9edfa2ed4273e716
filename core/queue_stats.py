"""Queue depths, dead letters and the outbox backlog, read when Prometheus scrapes.

A prometheus_client collector served by the worker metrics server (one per pod).
RabbitMQ answers a *passive* ``queue.declare`` with the queue's ready-message and
consumer counts without touching a message; Dramatiq keeps retries waiting for
their backoff in ``<queue>.DQ`` and dead letters in ``<queue>.XQ``.

The age of the oldest message is not available this way: AMQP shows a message
only by delivering it, and the management API's ``head_message_timestamp`` needs
a publish timestamp that Dramatiq does not set. So the workers measure each
message's wait as they take it (``queue_wait_seconds``) and record when they last
took one (``queue_last_dequeue_timestamp_seconds``); with ``queue_messages_ready``
that tells a slow queue from a stalled one. The outbox's oldest row, which is
not yet in any queue, is measured exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import pika
from prometheus_client.core import GaugeMetricFamily

from core import db, outbox
from core.settings import Settings

log = logging.getLogger(__name__)

DELAY_SUFFIX, DEAD_SUFFIX = ".DQ", ".XQ"  # Dramatiq's names, see its RabbitmqBroker
# Several scrapers (or a fast scrape interval) must not multiply broker and
# database round trips.
CACHE_S = 5.0
TIMEOUT_S = 2.0


def rabbitmq_counts(dsn: str, names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(ready messages, consumers) per queue; a queue never declared counts 0."""
    params = pika.URLParameters(dsn)
    params.socket_timeout = TIMEOUT_S
    params.blocked_connection_timeout = TIMEOUT_S
    params.connection_attempts = 1
    counts = {}
    connection = pika.BlockingConnection(params)
    try:
        for name in names:
            # The broker closes a channel on a 404, so each queue gets its own.
            channel = connection.channel()
            try:
                ok = channel.queue_declare(name, passive=True)
            except pika.exceptions.ChannelClosedByBroker as ex:
                if ex.reply_code != 404:
                    raise
                counts[name] = (0, 0)
                continue
            counts[name] = (ok.method.message_count, ok.method.consumer_count)
            channel.close()
    finally:
        connection.close()
    return counts


def _outbox_backlog() -> tuple[int, float]:
    try:
        return outbox.backlog()
    finally:
        if not db.database.is_closed():
            db.database.close()


class QueueStats:
    """Collector of ``queue_*`` and ``outbox_*`` gauges (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        queues: Iterable[str] = outbox.QUEUES,
        backlog: Callable[[], tuple[int, float]] = _outbox_backlog,
    ):
        self._settings = settings
        self._queues = tuple(queues)
        self._backlog = backlog
        self._cached: tuple[float, list] | None = None

    def describe(self):
        # Registration would otherwise call collect() and hit the broker.
        return self._families({}, None, {})

    def collect(self):
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > CACHE_S:
            self._cached = (now, self._read())
        return self._cached[1]

    def _read(self) -> list:
        up = {}
        counts: dict[str, tuple[int, int]] = {}
        if self._settings.broker_kind == "rabbitmq":
            names = [
                n for q in self._queues for n in (q, q + DELAY_SUFFIX, q + DEAD_SUFFIX)
            ]
            try:
                counts = rabbitmq_counts(self._settings.broker_dsn, names)
                up["broker"] = 1
            except Exception as ex:  # metrics must answer even with the broker away
                log.warning("queue stats: broker: %s: %s", type(ex).__name__, ex)
                up["broker"] = 0
        backlog = None
        try:
            backlog = self._backlog()
            up["postgres"] = 1
        except Exception as ex:
            log.warning("queue stats: outbox: %s: %s", type(ex).__name__, ex)
            up["postgres"] = 0
        return self._families(counts, backlog, up)

    def _families(self, counts, backlog, up) -> list:
        ready = GaugeMetricFamily(
            "queue_messages_ready", "Messages waiting for a worker", labels=["queue"]
        )
        delayed = GaugeMetricFamily(
            "queue_messages_delayed",
            "Messages waiting out a retry backoff or an eta (Dramatiq's .DQ)",
            labels=["queue"],
        )
        dead = GaugeMetricFamily(
            "queue_dead_letter_messages",
            "Messages that exhausted their retries (Dramatiq's .XQ)",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "queue_consumers", "Consumers attached to the queue", labels=["queue"]
        )
        for queue in self._queues:
            if queue not in counts:
                continue
            ready.add_metric([queue], counts[queue][0])
            consumers.add_metric([queue], counts[queue][1])
            delayed.add_metric([queue], counts[queue + DELAY_SUFFIX][0])
            dead.add_metric([queue], counts[queue + DEAD_SUFFIX][0])
        rows = GaugeMetricFamily(
            "outbox_backlog_messages", "Committed jobs not yet published"
        )
        age = GaugeMetricFamily(
            "outbox_oldest_age_seconds", "Age of the oldest unpublished job"
        )
        if backlog is not None:
            rows.add_metric([], backlog[0])
            age.add_metric([], backlog[1])
        stats_up = GaugeMetricFamily(
            "queue_stats_up",
            "Whether the last read of a source succeeded",
            labels=["source"],
        )
        for source, value in up.items():
            stats_up.add_metric([source], value)
        return [ready, delayed, dead, consumers, rows, age, stats_up]
