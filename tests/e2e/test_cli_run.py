"""`python -m cli run`: loopback by default, and a dead process comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.e2e.test_gunicorn import ROOT, free_port


def ready(port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def child_with(cli: psutil.Process, word: str) -> psutil.Process | None:
    """The direct child of the supervisor whose command line names ``word``."""
    for child in cli.children():
        try:
            if any(word in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.fixture
def cli_run(services, clean, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "HOST"}
    env.update(PORT=str(port), WEB_WORKERS="1", WEB_THREADS="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: ready(port), 60, "the API to become ready")
        yield psutil.Process(proc.pid), port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(45)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_run_listens_on_loopback_and_restarts_a_killed_process(cli_run):
    cli, port = cli_run
    api = child_with(cli, "gunicorn")
    # Given the service started with no HOST: it listens on loopback only
    listening = {
        c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert listening == {"127.0.0.1"}
    # When the worker is killed outright
    worker = child_with(cli, "dramatiq")
    worker.kill()
    # Then the supervisor starts a new one and keeps everything else running
    new_worker = wait_for(
        lambda: (w := child_with(cli, "dramatiq")) and w.pid != worker.pid and w,
        20,
        "a new worker",
    )
    assert new_worker.is_running() and cli.is_running()
    assert api.is_running() and ready(port)
    # When the API's master is killed outright
    api.kill()
    # Then a new API serves again
    wait_for(
        lambda: (a := child_with(cli, "gunicorn")) and a.pid != api.pid, 20, "new API"
    )
    wait_for(lambda: ready(port), 60, "the restarted API to become ready")
    assert cli.is_running()
