"""Start the API and worker processes and stop them together on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings


def api_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:api.gunicorn_conf",
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
    """Run the commands until one exits or we are told to stop; stop them all.

    ``on_start`` sees each child as it starts (standalone mode records the pids
    so that a run after a crash can stop what this one left behind).
    """
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    # Handlers first: a Ctrl-C while the children start still stops them all.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    children = {}
    exit_code = 0
    try:
        for name, cmd in commands.items():
            children[name] = subprocess.Popen(
                cmd, env=env, cwd=PROJECT_ROOT, start_new_session=True
            )
            if on_start:
                on_start(name, children[name])
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(
                        f"{name} exited with {child.returncode}; stopping",
                        file=sys.stderr,
                    )
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.2)
    finally:
        terminate(children.values())
    return exit_code


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
