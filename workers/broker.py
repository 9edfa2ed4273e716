"""The one Dramatiq broker, built from settings.

RabbitMQ with publisher confirms: a send returns only once the broker has the
message, which matters for retries and the outbox relay. Standalone mode uses
Dramatiq's Redis broker instead (BROKER_KIND=redis).
"""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

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
    return RabbitmqBroker(
        url=_with_timeouts(settings.broker_dsn), confirm_delivery=True
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
