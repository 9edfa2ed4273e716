"""Liveness, readiness and the JWKS document."""

from __future__ import annotations

import dataclasses
import socket

import redis
from falcon import testing

from api.app import create_app


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_and_readyz_when_everything_answers(client):
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").json == {"status": "ready"}


def broken_redis_and_broker(deps):
    port = closed_port()
    broker_url = (
        f"redis://127.0.0.1:{port}/0"
        if deps.settings.broker_kind == "redis"
        else f"amqp://guest:guest@127.0.0.1:{port}/"
    )
    settings = deps.settings.replace(broker_url=broker_url)
    broken = dataclasses.replace(
        deps,
        settings=settings,
        redis=redis.Redis(port=port, socket_connect_timeout=1),
    )
    return testing.TestClient(create_app(settings, broken))


def test_redis_and_broker_outages_degrade_but_keep_the_api_ready(deps, clean):
    # Given an API whose Redis and broker do not answer
    client = broken_redis_and_broker(deps)
    # Then it still gets traffic: it serves from Postgres, writes wait in the outbox
    assert client.simulate_get("/readyz").json == {"status": "ready"}
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    # and the verbose health names what is down
    verbose = client.simulate_get("/healthz", params={"verbose": ""})
    assert verbose.status_code == 200
    assert verbose.json["status"] == "degraded"
    checks = verbose.json["checks"]
    assert checks["postgres"] == {"ok": True, "detail": "ok"}
    assert not checks["redis"]["ok"] and not checks["broker"]["ok"]
    # as do the metrics (served on METRICS_PORT)
    from core import metrics as core_metrics

    metrics = core_metrics.render(deps.settings.metrics_dir)[0].decode()
    assert 'dependency_up{dependency="redis"} 0.0' in metrics
    assert 'dependency_up{dependency="postgres"} 1.0' in metrics


def test_verbose_health_when_everything_answers(client):
    r = client.simulate_get("/healthz?verbose")
    assert r.json["status"] == "ok"
    assert {name for name, c in r.json["checks"].items() if c["ok"]} == {
        "postgres",
        "redis",
        "broker",
    }


def test_readyz_is_503_while_migrations_are_pending(client):
    from core import db

    # Given a database one migration behind the code
    row = db.fetchone(
        "SELECT version, name FROM schema_migrations ORDER BY version DESC"
    )
    db.execute("DELETE FROM schema_migrations WHERE version = %s", (row[0],))
    try:
        r = client.simulate_get("/readyz")
    finally:
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", row)
        db.database.close()
    # Then no traffic is sent to it, and it says why
    assert r.status_code == 503
    assert r.json["failing"] == "migrations" and row[1] in r.json["detail"]
