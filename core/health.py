"""Dependency checks for readiness: each returns None when fine, else a reason."""

from __future__ import annotations

import time

import pika
import redis

from core import db
from core.settings import Settings


def check_postgres() -> str | None:
    try:
        db.fetchone("SELECT 1")
        return None
    except Exception as ex:
        return f"postgres: {type(ex).__name__}"
    finally:
        if not db.database.is_closed():
            db.database.close()


def check_redis(client: redis.Redis) -> str | None:
    try:
        client.ping()
        return None
    except redis.RedisError as ex:
        return f"redis: {type(ex).__name__}"


def check_broker(settings: Settings) -> str | None:
    if settings.broker_kind == "redis":
        try:
            redis.Redis.from_url(settings.broker_dsn, socket_timeout=2).ping()
            return None
        except redis.RedisError as ex:
            return f"broker: {type(ex).__name__}"
    params = pika.URLParameters(settings.broker_dsn)
    params.socket_timeout = 2
    params.blocked_connection_timeout = 2
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
        return None
    except (pika.exceptions.AMQPError, OSError) as ex:
        return f"broker: {type(ex).__name__}"


class Readiness:
    """Caches the verdict briefly so probes cannot hammer the dependencies."""

    TTL_S = 2.0

    def __init__(self, settings: Settings, redis_client: redis.Redis):
        self._settings = settings
        self._redis = redis_client
        self._cached: tuple[float, list[str]] | None = None

    def failures(self) -> list[str]:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self.TTL_S:
            return self._cached[1]
        checks = (
            check_postgres(),
            check_redis(self._redis),
            check_broker(self._settings),
        )
        found = [c for c in checks if c]
        self._cached = (now, found)
        return found
