"""The walk-through of docs/api.md against real gunicorn and a Dramatiq worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, (
                    json.loads(raw)
                    if raw
                    and response.headers["Content-Type"].startswith("application/json")
                    else raw
                )
        except urllib.error.HTTPError as ex:
            return ex.code, json.loads(ex.read() or b"{}")


@pytest.fixture
def server(services, clean, tmp_path):
    port = free_port()
    metrics_port = free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        METRICS_PORT=str(metrics_port),
        WEB_WORKERS="2",
        WEB_THREADS="4",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    from cli import processes

    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        for cmd in (processes.api_command(None), processes.worker_command(1, 2))
    ]
    http = Http(f"http://127.0.0.1:{port}")
    http.metrics = Http(f"http://127.0.0.1:{metrics_port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if http.call("GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("gunicorn did not become ready")
    yield http
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(30)


def test_readme_walkthrough_over_real_http(server):
    http = server
    assert (
        http.call(
            "POST",
            "/auth/signup",
            {
                "username": "alice",
                "email": "alice@example.com",
                "password": "correct horse",
            },
        )[0]
        == 201
    )
    assert (
        http.call(
            "POST",
            "/auth/signup",
            {
                "username": "bob",
                "email": "bob@example.com",
                "password": "battery staple",
            },
        )[0]
        == 201
    )
    _, alice = http.call(
        "POST", "/auth/login", {"username": "alice", "password": "correct horse"}
    )
    _, bob = http.call(
        "POST", "/auth/login", {"username": "bob", "password": "battery staple"}
    )
    assert (
        http.call("GET", "/timeline/home", token=bob["access_token"])[1]["data"] == []
    )
    assert http.call(
        "POST", "/user/follow?username=alice", token=bob["access_token"]
    ) == (200, {"following": True})
    status, tweet = http.call(
        "POST", "/tweet/create", {"tweet_content": "hello"}, token=alice["access_token"]
    )
    assert status == 201
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, home = http.call("GET", "/timeline/home", token=bob["access_token"])
        if [t["id"] for t in home["data"]] == [tweet["id"]]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"tweet never reached bob's home: {home}")
    status, fresh = http.call(
        "POST", "/auth/refresh-token", {"refresh_token": bob["refresh_token"]}
    )
    assert status == 200
    assert http.call("POST", "/auth/logout", token=fresh["access_token"])[0] == 204
    assert http.call("GET", "/timeline/home", token=fresh["access_token"])[0] == 401
    # Metrics: on METRICS_PORT (the master, all workers' samples), never on the
    # API port, which an Ingress exposes.
    assert http.call("GET", "/metrics")[0] == 404
    status, metrics = http.metrics.call("GET", "/metrics")
    assert status == 200
    count = b'http_request_duration_seconds_count{method="POST",route="/tweet/create"'
    assert count in metrics
    with pytest.raises(urllib.error.HTTPError) as ex:  # metrics, and only them
        urllib.request.urlopen(http.metrics.base + "/healthz", timeout=5)
    assert ex.value.code == 404


def test_helm_test_round_trip_passes_and_cleans_up(server):
    """The chart's `helm test` script, run as the test pod runs it, against real
    gunicorn and a real worker: it needs the fan-out to pass."""
    import re
    import sys

    script = ROOT / "charts" / "twitter" / "files" / "tests" / "roundtrip.py"
    proc = subprocess.run(
        [sys.executable, str(script)],
        env={"PATH": os.environ["PATH"], "API_URL": server.base, "TIMEOUT_S": "20"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "follower's home timeline shows the tweet" in proc.stdout
    names = re.findall(r"^user \w+ (\w+)$", proc.stdout, re.M)
    assert len(names) == 2
    for name in names:  # deleted afterwards
        assert server.call("GET", f"/user/data/{name}")[0] == 404


def chunked_post(base: str, path: str, chunks, content_type="application/json"):
    """POST ``chunks`` with Transfer-Encoding: chunked (no Content-Length)."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(
        "POST",
        path,
        body=iter(chunks),
        headers={"Content-Type": content_type},
        encode_chunked=True,
    )
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, json.loads(raw) if raw else None


def test_chunked_bodies_are_read_and_bounded_like_any_other(server):
    # Given a signup body sent in three chunks, without Content-Length
    body = json.dumps(
        {"username": "chunky", "email": "chunky@example.com", "password": "pw-123456"}
    ).encode()
    chunks = [body[:10], body[10:30], body[30:]]
    # Then it is read in full
    status, user = chunked_post(server.base, "/auth/signup", chunks)
    assert status == 201, user
    assert user["username"] == "chunky"
    # and a 2 MiB chunked body is refused as too large, not as malformed
    big = [b'{"username": "' + b"x" * 65536] * 32
    status, problem = chunked_post(server.base, "/auth/signup", big)
    assert status == 413 and problem["code"] == "payload_too_large"
    # and the server still answers on
    assert server.call("GET", "/healthz")[0] == 200


def raw_exchange(base: str, request: bytes) -> tuple[int, dict, bytes]:
    from urllib.parse import urlsplit

    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return int(lines[0].split()[1]), headers, body


def test_requests_the_http_server_refuses_get_problem_json_too(server):
    cases = {
        414: b"GET /timeline/user?username=" + b"x" * 9000 + b" HTTP/1.1\r\n"
        b"Host: x\r\n\r\n",
        431: b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        + b"\r\n",
        400: b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    }
    for status, request in cases.items():
        got, headers, body = raw_exchange(server.base, request)
        assert got == status
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == status and problem["code"]
