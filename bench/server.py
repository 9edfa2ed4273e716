"""The service's processes, started with the production commands, and CPU meters.

The API and the no-op baseline run under the same gunicorn config
(``python:api.gunicorn_conf``, WEB_WORKERS x WEB_THREADS); the worker is the
production ``dramatiq workers.main`` command. Each runs in its own session so
its whole process tree can be measured and stopped by its id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cli import processes
from core.settings import PROJECT_ROOT, Settings

CLK_TCK = os.sysconf("SC_CLK_TCK")
NOOP_APP = "bench.noop:create_app()"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free right now (held together while choosing)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _session_ticks(sid: int) -> int:
    """CPU ticks of every process in session ``sid``, reaped children included."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        # fields[0] is field 3 (state): session is 6, utime..cstime 14..17
        if int(fields[3]) == sid:
            total += sum(int(v) for v in fields[11:15])
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path

    def cpu_seconds(self) -> float:
        return _session_ticks(self.proc.pid) / CLK_TCK

    def boots(self) -> int:
        """gunicorn workers booted so far (max_requests restarts show up here)."""
        with open(self.log, "rb") as handle:
            return handle.read().count(b"Booting worker")

    def alive(self) -> bool:
        return self.proc.poll() is None

    @contextlib.contextmanager
    def paused(self):
        """SIGSTOP the whole tree for the block (connections stay open)."""
        os.killpg(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self, grace_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start(
    name: str, command: list[str], env: dict, logdir: Path, cwd: Path = PROJECT_ROOT
) -> Service:
    log = logdir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Service(name, proc, log)


def api_command(
    settings: Settings, app: str | None = None, extra: tuple[str, ...] = ()
) -> list[str]:
    """The production gunicorn command, optionally serving another app; ``extra``
    gunicorn options (experiments) go before the app and win over the config."""
    command = processes.api_command(settings)
    return [*command[:-1], *extra, app or command[-1]]


def worker_command(processes_: int, threads: int) -> list[str]:
    return processes.worker_command(processes_, threads)


def wait_http(service: Service, url: str, timeout_s: float = 60.0) -> None:
    """Until ``url`` answers 200; fails early if the service exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited; see {service.log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} not ready at {url}; see {service.log}")
