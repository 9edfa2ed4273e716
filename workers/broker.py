"""The one Dramatiq broker, built from settings.

RabbitMQ with publisher confirms: a send returns only once the broker has the
message, which matters for retries and the outbox relay. Standalone mode uses
Dramatiq's Redis broker instead (BROKER_KIND=redis).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from core.settings import Settings


def make_broker(settings: Settings) -> dramatiq.Broker:
    if settings.broker_kind == "redis":
        return RedisBroker(url=settings.broker_dsn, namespace="dramatiq")
    return RabbitmqBroker(
        url=_with_timeouts(settings.broker_dsn), confirm_delivery=True
    )


def _with_timeouts(url: str) -> str:
    """Heartbeats keep idle publishers alive; the rest bound every wait."""
    extra = "heartbeat=30&blocked_connection_timeout=30&socket_timeout=10"
    if "?" in url:
        return url if "heartbeat=" in url else f"{url}&{extra}"
    return f"{url}?{extra}"
