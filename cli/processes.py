"""Start the API and worker processes, restart one that dies, stop them on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings

# A child that dies is restarted after 1 s, then 2, 4 ... up to 30 s while it
# keeps dying; one that ran for a minute counts as healthy again.
BACKOFF_FIRST_S, BACKOFF_MAX_S, STABLE_AFTER_S = 1.0, 30.0, 60.0


def bind_address(settings: Settings) -> str:
    host = settings.host
    return f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"


def api_command(settings: Settings | None, bind: str | None = None) -> list[str]:
    """gunicorn with the app's config (which binds every interface on PORT, for
    containers); ``bind`` overrides that, as the command line wins."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:api.gunicorn_conf",
        *(["--bind", bind] if bind else []),
        "api.wsgi:app",
    ]


def worker_command(processes: int = 1, threads: int = 4) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.main",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--worker-shutdown-timeout",
        "20000",
    ]


def prepare_metrics_dir(base: Path) -> str:
    """A fresh directory for prometheus_client's multiprocess files."""
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob("*.db"):
        stale.unlink()
    return str(base)


def supervise(
    commands: dict[str, list[str]],
    env: dict[str, str],
    on_start: Callable[[str, subprocess.Popen], None] | None = None,
) -> int:
    """Run the commands until told to stop, restarting any that exits, then stop all.

    ``on_start(name, popen)`` sees each child as it starts (standalone records pids).
    """
    # Why: docs/standalone.md#stopping-crashes
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    # Handlers first: a Ctrl-C while the children start still stops them all.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    children: dict[str, subprocess.Popen | None] = {}
    started_at: dict[str, float] = {}
    restart_at: dict[str, float] = {}
    crashes = dict.fromkeys(commands, 0)

    def start(name: str) -> None:
        children[name] = subprocess.Popen(
            commands[name], env=env, cwd=PROJECT_ROOT, start_new_session=True
        )
        started_at[name] = time.monotonic()
        if on_start:
            on_start(name, children[name])

    try:
        for name in commands:
            if not stopping:
                start(name)
        while not stopping:
            now = time.monotonic()
            for name in commands:
                child = children.get(name)
                if child is None:
                    if now >= restart_at[name] and not stopping:
                        start(name)
                    continue
                if child.poll() is None:
                    continue
                # What is left of its group first: gunicorn or Dramatiq children
                # of a dead master would hold the port or the queues.
                _kill_group(child.pid)
                if now - started_at[name] >= STABLE_AFTER_S:
                    crashes[name] = 0
                delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** crashes[name])
                crashes[name] += 1
                print(
                    f"{name} exited with {child.returncode}; restarting in {delay:g} s",
                    file=sys.stderr,
                    flush=True,
                )
                children[name] = None
                restart_at[name] = now + delay
            time.sleep(0.2)
    finally:
        terminate([c for c in children.values() if c is not None])
    return 0


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # nothing left of it
        os.killpg(pgid, signal.SIGKILL)


def terminate(children, grace_s: float = 25.0) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
