"""JSON log lines: one per request and per job, request ids, nothing secret."""

from __future__ import annotations

import io
import json
import logging
import random
import re

import pytest

from core import logs
from tests.factories import user_with_token

FORMATTER = logs.JsonFormatter()


def lines(caplog, logger: str | None = None) -> list[dict]:
    """Captured records as the JSON lines production would print."""
    return [
        json.loads(FORMATTER.format(r))
        for r in caplog.records
        if logger is None or r.name == logger
    ]


def test_a_line_is_one_json_object_with_context_and_extras():
    record = logging.makeLogRecord(
        {"name": "x", "levelno": 20, "levelname": "INFO", "msg": "hi %s", "args": (1,)}
    )
    record.route = "/a/{b}"
    token = logs.bind(request_id="r-1")
    try:
        line = json.loads(FORMATTER.format(record))
    finally:
        logs.unbind(token)
    assert line["msg"] == "hi 1" and line["level"] == "info" and line["logger"] == "x"
    assert line["request_id"] == "r-1" and line["route"] == "/a/{b}"
    assert line["ts"].endswith("Z")
    assert "request_id" not in json.loads(FORMATTER.format(record))


def test_secrets_and_emails_are_scrubbed():
    record = logging.makeLogRecord(
        {
            "name": "x",
            "levelname": "WARNING",
            "msg": "user alice@example.com sent Bearer abc.def and "
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln with password=hunter2",
        }
    )
    record.password = "hunter2"
    record.refresh_token = "secret-value"
    line = FORMATTER.format(record)
    for leaked in ("alice@", "abc.def", "eyJ", "hunter2", "secret-value"):
        assert leaked not in line
    assert "***@example.com" in line


def test_every_request_logs_one_line_with_route_status_user_and_request_id(
    client, caplog
):
    caplog.set_level(logging.INFO, logger="api.access")
    alice, headers = user_with_token(client, username="alice")
    caplog.clear()
    client.simulate_get(
        "/user/data/alice", headers={**headers, "X-Request-ID": "req-abc.1"}
    )
    (line,) = lines(caplog, "api.access")
    assert line["method"] == "GET"
    assert line["route"] == "/user/data/{username}"  # the template, not the path
    assert line["status"] == 200
    assert line["user_id"] == alice["id"]
    assert line["request_id"] == "req-abc.1"
    assert isinstance(line["duration_ms"], float)


def test_an_insane_request_id_is_replaced_and_echoed(client, caplog):
    caplog.set_level(logging.INFO, logger="api.access")
    r = client.simulate_get("/healthz", headers={"X-Request-ID": "bad id\n" * 40})
    (line,) = lines(caplog, "api.access")
    assert r.headers["X-Request-ID"] == line["request_id"]
    # a fresh uuid4 hex (any 32 hex digits may spell "bad"; none holds a space)
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])


def test_a_token_sent_as_request_id_is_scrubbed_from_the_access_line(client, caplog):
    # fields we build ourselves skip the scrubbing; a client's request id must not
    caplog.set_level(logging.INFO, logger="api.access")
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    client.simulate_get("/healthz", headers={"X-Request-ID": jwt_like})
    (line,) = lines(caplog, "api.access")
    assert jwt_like not in json.dumps(line)
    assert line["route"] == "/healthz" and line["status"] == 200


def test_no_password_token_or_email_reaches_a_log_line(client, caplog):
    caplog.set_level(logging.DEBUG)
    user_with_token(client, username="erin", password="correct horse 9")
    bad = client.simulate_post(
        "/auth/login", json={"username": "erin", "password": "tr0ub4dor&3"}
    )
    assert bad.status_code == 401
    pair = client.simulate_post(
        "/auth/login", json={"username": "erin", "password": "correct horse 9"}
    ).json
    client.simulate_post("/auth/refresh-token", json=pair)
    text = "\n".join(FORMATTER.format(r) for r in caplog.records)
    assert text  # the access lines at least
    for secret in (
        "correct horse 9",
        "tr0ub4dor",
        pair["access_token"],
        pair["refresh_token"],
        "erin@example.com",
    ):
        assert secret not in text


@pytest.mark.usefixtures("worker")
def test_the_request_id_appears_in_the_job_log_line(client, drain, caplog):
    caplog.set_level(logging.INFO, logger="workers.jobs")
    # Given a follower with a materialized home
    _, alice = user_with_token(client, username="alice")
    _, bob = user_with_token(client, username="bob")
    client.simulate_post("/user/follow", params={"username": "alice"}, headers=bob)
    client.simulate_get("/timeline/home", headers=bob)
    drain()
    caplog.clear()
    # When alice posts with a request id
    r = client.simulate_post(
        "/tweet/create",
        json={"tweet_content": "traced"},
        headers={**alice, "X-Request-ID": "req-fanout-42"},
    )
    assert r.headers["X-Request-ID"] == "req-fanout-42"
    drain()
    # Then the fan-out job's line carries it
    jobs = [j for j in lines(caplog, "workers.jobs") if j["actor"] == "fanout_tweet"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job["request_id"] == "req-fanout-42"
    assert job["outcome"] == "ok" and job["queue"] == "fanout"
    assert job["message_id"] and isinstance(job["duration_ms"], float)


@pytest.mark.parametrize("request_id", ["ours-1", "eyJhbGciOi.eyJzdWIi.c2ln"])
def test_the_access_line_through_the_production_handler(
    client, monkeypatch, request_id
):
    # Given the production set-up: one JSON handler on the root logger
    stream = io.StringIO()
    monkeypatch.setattr(logging.getLogger(), "handlers", [_json_handler(stream)])
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    # When a request fails to find its user
    r = client.simulate_get("/user/data/nobody", headers={"X-Request-ID": request_id})
    assert r.status_code == 404 and r.headers["X-Request-ID"] == request_id
    # Then its one line names the route template and status, and a client's
    # token-like request id is scrubbed
    (text,) = [t for t in stream.getvalue().splitlines() if "api.access" in t]
    line = json.loads(text)
    assert line["route"] == "/user/data/{username}" and line["status"] == 404
    assert line["msg"] == "GET /user/data/{username} 404"
    assert "eyJ" not in text
    assert (line["request_id"] == request_id) == (not request_id.startswith("eyJ"))


def test_line_timestamps_equal_datetime_formatting():
    # the cached per-second prefix must not drift from the full formatting,
    # at millisecond and second boundaries included
    from datetime import UTC, datetime

    formatter = logs.JsonFormatter()
    rng = random.Random(3)
    for _ in range(20_000):
        t = rng.choice(
            [
                rng.uniform(0, 4e9),
                int(rng.uniform(0, 4e9)) + rng.choice([0.9999995, 5e-7, 0.9995]),
            ]
        )
        expected = (
            datetime.fromtimestamp(t, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        record = logging.makeLogRecord({"msg": "m", "created": t})
        assert json.loads(formatter.format(record))["ts"] == expected, t


def _json_handler(stream) -> logging.StreamHandler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    return handler
