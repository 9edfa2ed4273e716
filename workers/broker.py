"""The one Dramatiq broker, built from settings.

RabbitMQ with publisher confirms: a send returns only once the broker has the
message, which matters for retries. The outbox relay sends whole batches with
one wait each through :class:`BatchPublisher`. Standalone mode uses Dramatiq's
Redis broker instead (BROKER_KIND=redis).
"""

from __future__ import annotations

import contextlib

import dramatiq
import pika
import redis
from dramatiq import Message
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name, xq_name

from core.settings import Settings

# Redis broker: unlike RabbitMQ, Redis cannot see a consumer die, so a killed
# worker's unacked messages wait until another worker's "maintenance" notices its
# heartbeat is stale and requeues them. Every broker command is a heartbeat and
# an idle consumer polls at least once a second, so 15 s of silence means dead;
# running maintenance on 5% of commands (Dramatiq's default: 0.1%) requeues
# within seconds of that instead of minutes.
REDIS_HEARTBEAT_TIMEOUT_MS = 15_000
REDIS_MAINTENANCE_CHANCE = 50_000  # per million commands


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.broker_kind == "redis":
        return _redis_broker(settings)
    return TypedQueueBroker(
        url=_with_timeouts(settings.broker_dsn),
        confirm_delivery=True,
        queue_type=settings.broker_queue_type,
    )


# Why: docs/design.md#the-broker-queue-types-and-batched-publishing
class TypedQueueBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker, declaring its queues with ``x-queue-type``."""

    def __init__(self, *args, queue_type: str = "classic", **kwargs):
        if queue_type not in ("classic", "quorum"):
            raise ValueError(f"queue_type must be classic or quorum, not {queue_type}")
        if queue_type == "quorum" and kwargs.get("max_priority"):
            raise ValueError("quorum queues do not take x-max-priority")
        super().__init__(*args, **kwargs)
        self.queue_type = queue_type

    def _build_queue_arguments(self, queue_name):
        arguments = super()._build_queue_arguments(queue_name)
        arguments["x-queue-type"] = self.queue_type
        return arguments

    def _declare_xq_queue(self, queue_name):
        # Dramatiq's own declaration with the type added (its arguments are
        # built inline there, not by _build_queue_arguments).
        return self.channel.queue_declare(
            queue=xq_name(queue_name),
            durable=True,
            arguments={
                "x-message-ttl": DEAD_MESSAGE_TTL,
                "x-queue-type": self.queue_type,
            },
        )


def _redis_broker(settings: Settings) -> RedisBroker:
    # Our own client: RedisBroker(url=...) would drop the socket timeouts, and a
    # dead Redis must fail a send, not hang it.
    client = redis.Redis.from_url(
        settings.broker_dsn,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return RedisBroker(
        client=client,
        namespace="dramatiq",
        heartbeat_timeout=REDIS_HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=REDIS_MAINTENANCE_CHANCE,
    )


def _with_timeouts(url: str) -> str:
    """Heartbeats keep idle publishers alive; the rest bound every wait."""
    extra = "heartbeat=30&blocked_connection_timeout=30&socket_timeout=10"
    if "?" in url:
        return url if "heartbeat=" in url else f"{url}&{extra}"
    return f"{url}?{extra}"


# Why: docs/design.md#the-broker-queue-types-and-batched-publishing
# It relies on RabbitmqBroker's parameters, declare_queue, queues_pending and
# enqueue's wire format: dramatiq is pinned below 2.3 in pyproject.toml, and
# tests/workers/test_relay.py checks a batch message against enqueue's.
class BatchPublisher:
    """Sends a batch of messages and returns once the broker holds all of them.

    RabbitMQ: one AMQP transaction per batch; any other broker: ``enqueue`` each.
    """

    def __init__(self, broker: dramatiq.Broker):
        self._broker = broker
        self._rabbit = isinstance(broker, RabbitmqBroker)
        self._connection = None
        self._channel = None
        self._returned: list[str] = []  # message ids RabbitMQ could not route

    def publish(self, messages: list[Message]) -> list[Message]:
        """Send ``messages``; returns those the broker now holds (all, unless a
        queue vanished). Raises when the broker is unreachable, in which case
        any of them may or may not have been delivered."""
        if not self._rabbit:
            for message in messages:
                self._broker.enqueue(message)
            return messages
        try:
            return self._publish_tx(messages)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
            # A connection that idled past its heartbeat fails on first use:
            # retry once on a fresh one before reporting the broker away.
            self.close()
            return self._publish_tx(messages)

    def keepalive(self) -> None:
        """Answer heartbeats while idle, so the next batch finds it open."""
        if self._connection is not None:
            try:
                self._connection.process_data_events(time_limit=0)
            except Exception:  # noqa: BLE001 - reopened by the next publish
                self.close()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()

    def _open(self):
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(self._broker.parameters)
            channel = self._connection.channel()
            channel.tx_select()
            channel.add_on_return_callback(self._on_return)
            self._channel = channel
        return self._channel

    def _on_return(self, _channel, _method, _properties, body) -> None:
        self._returned.append(Message.decode(body).message_id)

    def _publish_tx(self, messages: list[Message]) -> list[Message]:
        broker = self._broker
        for queue_name in {q_name(m.queue_name) for m in messages}:
            broker.declare_queue(queue_name, ensure=True)
        channel = self._open()
        self._returned.clear()
        try:
            for message in messages:
                broker.emit_before("enqueue", message, None)
                channel.basic_publish(
                    exchange="",
                    routing_key=message.queue_name,
                    body=message.encode(),
                    properties=pika.BasicProperties(
                        delivery_mode=2,
                        priority=message.options.get("broker_priority"),
                    ),
                    mandatory=True,
                )
            channel.tx_commit()
            # Basic.Return frames precede Tx.CommitOk: hand them to _on_return.
            self._connection.process_data_events(time_limit=0)
        except Exception:
            self.close()
            raise
        sent = [m for m in messages if m.message_id not in self._returned]
        if len(sent) < len(messages):
            # A queue deleted under us: declare it again before the next try,
            # as Dramatiq's enqueue does on UnroutableError.
            for message in messages:
                if message.message_id in self._returned:
                    broker.queues_pending.add(q_name(message.queue_name))
        for message in sent:
            broker.emit_after("enqueue", message, None)
        return sent
