"""Dependency checks (each returns None when fine, else a reason) and readiness."""

from __future__ import annotations

import threading
import time

import pika
import redis

from core import db, metrics
from core.settings import Settings


def check_database() -> str | None:
    """Postgres answers and every migration this code ships has been applied."""
    from migrations import runner  # migrations import core: only when asked

    try:
        with db.database.connection_context():
            missing = runner.pending()
    except Exception as ex:
        return f"postgres: {type(ex).__name__}"
    if missing:
        return "migrations: pending " + ", ".join(name for _, name in missing)
    return None


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


# Why: docs/operations.md#health
class Readiness:
    """Whether this API process should get traffic, and how its dependencies are.

    Ready: Postgres answers and the schema is current; Redis or broker outages degrade.
    """

    TTL_S = 2.0
    DETAILS_TTL_S = 10.0

    def __init__(self, settings: Settings, redis_client: redis.Redis):
        self._settings = settings
        self._redis = redis_client
        self._cached: tuple[float, list[str]] | None = None
        self._details: tuple[float, dict] | None = None
        self._refreshing = threading.Lock()

    def failures(self) -> list[str]:
        now = time.monotonic()
        if not (self._cached and now - self._cached[0] < self.TTL_S):
            problem = check_database()
            self._cached = (now, [problem] if problem else [])
            metrics.DEPENDENCY_UP.labels("postgres").set(0 if problem else 1)
            self._refresh_in_background()
        return self._cached[1]

    def details(self) -> dict:
        """Each dependency: ``{"ok": bool, "detail": str}``, for people."""
        now = time.monotonic()
        if self._details and now - self._details[0] < self.TTL_S:
            return self._details[1]
        with self._refreshing:  # a background refresh may just have run
            if self._details and time.monotonic() - self._details[0] < self.TTL_S:
                return self._details[1]
            return self._check_all()

    def _check_all(self) -> dict:
        checks = {
            "postgres": check_database(),
            "redis": check_redis(self._redis),
            "broker": check_broker(self._settings),
        }
        found = {}
        for name, problem in checks.items():
            metrics.DEPENDENCY_UP.labels(name).set(0 if problem else 1)
            found[name] = {
                "ok": problem is None,
                "detail": problem.split(": ", 1)[1] if problem else "ok",
            }
        self._details = (time.monotonic(), found)
        return found

    def _refresh_in_background(self) -> None:
        stale = (
            self._details is None
            or time.monotonic() - self._details[0] > self.DETAILS_TTL_S
        )
        if stale and self._refreshing.acquire(blocking=False):

            def run():
                try:
                    self._check_all()
                finally:
                    self._refreshing.release()

            threading.Thread(target=run, name="health-details", daemon=True).start()
