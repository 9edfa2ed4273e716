"""Metrics: they move when things happen, parse, and add up across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pika
import pytest
from falcon import testing

from api.metrics import metrics_app
from core import metrics, outbox
from tests.factories import user_with_token
from tests.observability.scrape import current, families, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_metrics_route_parses_and_labels_routes_by_template(client, settings):
    client.simulate_get("/user/data/somebody")
    # The API itself has no /metrics (a port of its own serves them).
    assert client.simulate_get("/metrics").status_code == 404
    r = testing.TestClient(metrics_app(settings.metrics_dir)).simulate_get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    found = families(r.text)
    assert "http_request_duration_seconds" in found
    assert "http_requests_in_flight" in found
    routes = {
        s.labels.get("route") for s in found["http_request_duration_seconds"].samples
    }
    assert "/user/data/{username}" in routes and "/user/data/somebody" not in routes


def test_auth_and_rate_limit_counters_move(limited, settings):
    client = limited(rate_limit_login_failures="1 per minute")
    ok, failed = (
        current(settings, "auth_logins_total", outcome=o) for o in ("ok", "failed")
    )
    refused = current(settings, "http_rate_limited_total", bucket="login_failures")
    too_many = {"route": "/auth/login", "status": "429"}
    timed = current(settings, "http_request_duration_seconds_count", **too_many)
    user_with_token(client, username="frank")
    body = {"username": "frank", "password": "nope-nope"}
    assert client.simulate_post("/auth/login", json=body).status_code == 401
    assert client.simulate_post("/auth/login", json=body).status_code == 429
    assert current(settings, "auth_logins_total", outcome="ok") == ok + 1
    assert current(settings, "auth_logins_total", outcome="failed") == failed + 1
    assert (
        current(settings, "http_rate_limited_total", bucket="login_failures")
        == refused + 1
    )
    # a refused request is still timed under its route
    assert (
        current(settings, "http_request_duration_seconds_count", **too_many)
        == timed + 1
    )


def test_refresh_reuse_is_counted(client, settings):
    _, _ = user_with_token(client, username="gina")
    pair = client.simulate_post(
        "/auth/login", json={"username": "gina", "password": "password123"}
    ).json
    before = current(settings, "auth_refresh_reuse_total")
    body = {"refresh_token": pair["refresh_token"]}
    assert client.simulate_post("/auth/refresh-token", json=body).status_code == 200
    assert client.simulate_post("/auth/refresh-token", json=body).status_code == 401
    assert current(settings, "auth_refresh_reuse_total") == before + 1


@pytest.mark.usefixtures("worker")
def test_posting_a_tweet_moves_fanout_lag_entries_and_job_metrics(
    client, drain, settings
):
    # Given a follower whose home is materialized
    _, alice = user_with_token(client, username="alice")
    _, bob = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=bob)
    client.simulate_get("/timeline/home", headers=bob)
    drain()
    lag = current(settings, "timeline_fanout_lag_seconds_count")
    entries = current(settings, "timeline_fanout_entries_total")
    jobs = current(settings, "dramatiq_messages_total", actor_name="fanout_tweet")
    waits = current(settings, "queue_wait_seconds_count", queue="fanout")
    # When alice tweets and the workers catch up
    client.simulate_post("/tweet/create", json={"tweet_content": "hi"}, headers=alice)
    drain()
    # Then the lag was observed, bob's entry counted, the job measured
    assert current(settings, "timeline_fanout_lag_seconds_count") == lag + 1
    assert current(settings, "timeline_fanout_entries_total") == entries + 1
    assert (
        current(settings, "dramatiq_messages_total", actor_name="fanout_tweet")
        == jobs + 1
    )
    assert current(settings, "queue_wait_seconds_count", queue="fanout") == waits + 1
    assert current(settings, "outbox_relayed_total") >= 1


def test_samples_from_several_processes_add_up(tmp_path):
    # Given two processes (gunicorn workers) writing to one multiprocess directory
    code = (
        "from core import metrics\n"
        "metrics.HTTP_DURATION.labels('GET', '/probe', 200).observe(0.02)\n"
        "metrics.LOGINS.labels('ok').inc()\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    # Then one scrape reports both
    text = metrics.render(str(tmp_path))[0].decode()
    assert value(text, "http_request_duration_seconds_count", route="/probe") == 2
    assert value(text, "auth_logins_total", outcome="ok") == 2


@pytest.mark.needs_rabbitmq
def test_worker_metrics_server_reports_queues_dead_letters_and_outbox(drain, settings):
    from workers import metrics_server

    # Given a dead-lettered message in the timeline queue
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_dsn))
    channel = connection.channel()
    channel.basic_publish("", f"{outbox.TIMELINE_QUEUE}.XQ", b"{}")
    server, thread = metrics_server.start(settings, port=0)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
            text = r.read().decode()
    finally:
        server.shutdown()
        channel.queue_purge(f"{outbox.TIMELINE_QUEUE}.XQ")
        connection.close()
    found = families(text)
    for name in (
        "queue_messages_ready",
        "queue_messages_delayed",
        "queue_consumers",
        "outbox_backlog_messages",
        "outbox_oldest_age_seconds",
    ):
        assert name in found, name
    assert value(text, "queue_dead_letter_messages", queue="timeline") == 1
    assert value(text, "queue_stats_up", source="broker") == 1
    assert value(text, "queue_stats_up", source="postgres") == 1
    assert value(text, "queue_consumers", queue="fanout") >= 1  # the test worker
    assert value(text, "outbox_backlog_messages") == 0


def test_invented_methods_and_unknown_paths_add_no_metric_series(client, settings):
    def scraped() -> str:  # what METRICS_PORT serves (the API port has none)
        return metrics.render(settings.metrics_dir)[0].decode()

    def series(text):
        return [
            s.labels
            for s in families(text)["http_request_duration_seconds"].samples
            if s.name.endswith("_count")
        ]

    client.simulate_get("/healthz")
    before = series(scraped())
    # When a client sends 25 made-up methods to a real route and a made-up path
    for i in range(25):
        client.simulate_request(f"FOO{i}", "/healthz")
        client.simulate_request(f"BAR{i}", f"/no/such/path/{i}")
    after = series(scraped())
    # Then they are counted under fixed labels: two new series, not fifty
    assert not any(lab["method"].startswith(("FOO", "BAR")) for lab in after)
    assert {(lab["method"], lab["route"]) for lab in after} >= {
        ("other", "/healthz"),
        ("other", "unmatched"),
    }
    assert len(after) - len(before) <= 2
