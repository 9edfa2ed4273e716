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


def test_readyz_names_the_dependency_that_failed(deps, clean):
    port = closed_port()
    broker_url = (
        f"redis://127.0.0.1:{port}/0"
        if deps.settings.broker_kind == "redis"
        else f"amqp://guest:guest@127.0.0.1:{port}/"
    )
    broken_settings = deps.settings.replace(broker_url=broker_url)
    broken = dataclasses.replace(
        deps,
        settings=broken_settings,
        redis=redis.Redis(port=port, socket_connect_timeout=1),
    )
    r = testing.TestClient(create_app(broken_settings, broken)).simulate_get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["failing"] == "redis, broker"
    # liveness does not care
    assert (
        testing.TestClient(create_app(broken_settings, broken))
        .simulate_get("/healthz")
        .status_code
        == 200
    )
