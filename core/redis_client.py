"""The Redis client factory: explicit timeouts so no call can hang a worker."""

from __future__ import annotations

import redis

from core.settings import Settings


def make_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_dsn,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )
