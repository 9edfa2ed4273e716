"""The Redis client factory: explicit timeouts so no call can hang a worker."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.settings import Settings


def make_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_dsn,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
        # One quick retry at most: redis-py's default backoff would stall every
        # request for seconds while Redis is down, instead of falling back.
        retry=Retry(NoBackoff(), 1),
    )
