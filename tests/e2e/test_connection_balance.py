"""A burst of keep-alive connections is shared by gunicorn's workers.

Without it, whichever worker is on a CPU accepts the whole burst and serves it
on one core while its peer idles (``reuse_port`` in api/gunicorn_conf.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 16
TRIALS = 8
REQUEST = b"GET /noop HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture
def gunicorn(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), WEB_WORKERS="2", WEB_THREADS="4")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:api.gunicorn_conf"]
        + ["--bind", f"127.0.0.1:{port}", "bench.noop:create_app()"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        workers = _wait_for_workers(proc.pid, port, 2)
        yield port, workers
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_a_burst_of_keepalive_connections_is_spread_over_the_workers(gunicorn):
    port, workers = gunicorn
    for _ in range(TRIALS):
        # Given a client opening its whole pool at once, as wrk or an
        # ingress's upstream keep-alive pool does, and using every connection
        conns = [
            socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)
        ]
        try:
            for conn in conns:
                conn.sendall(REQUEST)
            for conn in conns:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            # Then each worker holds a share, none all of them
            held = [len(_established(pid, port)) for pid in workers]
            assert sum(held) == CONNECTIONS
            assert min(held) >= 2, held
        finally:
            for conn in conns:
                conn.close()
        _wait_until_closed(workers, port)


def _wait_for_workers(master: int, port: int, n: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(REQUEST)
                if s.recv(4096).startswith(b"HTTP/1.1 200"):
                    workers = _children(master)
                    if len(workers) == n:
                        _wait_until_closed(workers, port)
                        return workers
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not start its workers")


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry))
    return found


def _established(pid: int, port: int) -> set[int]:
    """Inodes of the ESTABLISHED connections to ``port`` that ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    established = set()
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and int(fields[9]) in inodes:
                established.add(int(fields[9]))
    return established


def _wait_until_closed(workers: list[int], port: int) -> None:
    deadline = time.monotonic() + 10
    while any(_established(pid, port) for pid in workers):
        assert time.monotonic() < deadline, "connections were not closed"
        time.sleep(0.01)
