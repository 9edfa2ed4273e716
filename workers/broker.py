"""The one Dramatiq broker, built from settings.

RabbitMQ with publisher confirms: a send returns only once the broker has the
message, which matters for retries (the outbox relay deletes a row only then).
Standalone mode uses Dramatiq's Redis broker instead (BROKER_KIND=redis).
"""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import xq_name

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


class TypedQueueBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker, declaring its queues with ``x-queue-type``.

    Every queue Dramatiq declares (the queue, its delay queue ``.DQ`` and its
    dead-letter queue ``.XQ``) gets the configured type: ``quorum`` queues are
    replicated over a RabbitMQ cluster's nodes and survive losing one. What they
    cannot do, and we do not use: per-message broker priorities beyond two levels
    (``x-max-priority``; our actors' ``priority`` is Dramatiq's in-worker order,
    and urgent work has queues of its own), and non-durable or exclusive queues.
    RabbitMQ refuses to redeclare a queue with another type, so switching a
    running broker means new, empty queues (charts/twitter/UPGRADING.md).
    """

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
