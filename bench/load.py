"""Driving the servers: wrk (or bench.pyload) as a child process, measured.

Every measurement records the generator's own CPU (from ``wait4``), the CPU
the server's process tree used, and how busy the whole machine was, so a reader
can see when the generator or a neighbour ate the cores.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import meters as meters_
from core.settings import PROJECT_ROOT

LUA = Path(__file__).with_name("wrk_requests.lua")
GENERATOR_NICE = -10  # the open-loop latency generator's priority (root only)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str = ""
    body: bytes = b""

    def line(self) -> str:
        return f"{self.method}\t{self.path}\t{self.token}\t{self.body.decode()}\n"


def write_requests(directory: Path, name: str, requests: list[Request]) -> Path:
    path = directory / f"{name}.requests"
    path.write_text("".join(r.line() for r in requests))
    return path


def find_wrk(install: bool) -> str | None:
    """wrk's path; with ``install``, try Debian's package first (root only)."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0:
        return found
    for step in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "wrk"],
    ):
        try:
            subprocess.run(step, capture_output=True, timeout=300, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
    return shutil.which("wrk")


@dataclass
class Measurement:
    """One load run: the generator's JSON plus where the CPU went."""

    raw: dict
    generator: str
    generator_cpu_s: float
    cpu_s: dict[str, float]  # by meter name, plus "machine_busy"
    counters: dict[str, float] = field(default_factory=dict)  # the API's, deltas
    generator_nice: int = 0  # the generator's scheduling priority (nice value)

    @property
    def seconds(self) -> float:
        return self.raw["duration_us"] / 1e6

    @property
    def rate(self) -> float:
        return self.raw["requests"] / self.seconds if self.seconds else 0.0

    @property
    def cores_used(self) -> float:
        """Cores of the measured parts and the generator (not the neighbours)."""
        used = sum(v for k, v in self.cpu_s.items() if k != "machine_busy")
        return (used + self.generator_cpu_s) / self.seconds

    @property
    def errors(self) -> int:
        return sum(self.raw["errors"].values())

    def summary(self) -> dict:
        cores = {k: round(v / self.seconds, 2) for k, v in self.cpu_s.items()}
        accounted = sum(v for k, v in cores.items() if k != "machine_busy")
        cores["generator"] = round(self.generator_cpu_s / self.seconds, 2)
        cores["rest_of_machine"] = round(
            cores["machine_busy"] - accounted - cores["generator"], 2
        )
        return {
            "generator": self.generator,
            **({"generator_nice": self.generator_nice} if self.generator_nice else {}),
            "requests": self.raw["requests"],
            "seconds": round(self.seconds, 2),
            "rate": round(self.rate, 1),
            "errors": self.raw["errors"],
            "latency_ms": {
                k: (None if v is None else round(v / 1000, 2))
                for k, v in self.raw["latency_us"].items()
            },
            "cpu_cores": cores,
            **({"app_counters": self.counters} if self.counters else {}),
        }


def _run_child(
    command: list[str], meters: dict[str, meters_.Meter], nice: int = 0
) -> Measurement:
    before = {name: read() for name, read in meters.items()}
    machine0 = meters_.machine()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            preexec_fn=(lambda: _renice(nice)) if nice else None,
        )
        niceness = os.getpriority(os.PRIO_PROCESS, proc.pid) if nice else 0
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    machine1 = meters_.machine()
    cpu = {name: meters_.used(before[name], read()) for name, read in meters.items()}
    wall = machine1["wall"] - machine0["wall"]
    busy = machine1["busy"] - machine0["busy"]
    marker = [line for line in text.splitlines() if line.startswith("BENCHJSON ")]
    if proc.returncode != 0 or not marker:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}):\n{text[-2000:]}")
    raw = orjson.loads(marker[-1][len("BENCHJSON ") :])
    # the machine's busy time scaled to the generator's measured window
    cpu["machine_busy"] = busy * (raw["duration_us"] / 1e6) / wall if wall else 0.0
    kind = "wrk" if "wrk" in command[0] else "python"
    m = Measurement(raw, kind, usage.ru_utime + usage.ru_stime, cpu)
    m.generator_nice = niceness
    return m


def _renice(nice: int) -> None:
    """In the child: take a higher priority if allowed (root), else keep ours."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def closed(
    wrk: str | None,
    port: int,
    requests_file: Path,
    seconds: float,
    connections: int,
    meters: dict[str, meters_.Meter],
) -> Measurement:
    """Maximum throughput: ``connections`` busy keep-alive connections."""
    if wrk:
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
            "--",
            str(requests_file),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.pyload",
            "closed",
            str(port),
            str(requests_file),
            str(seconds),
            str(connections),
        ]
    return _run_child(command, meters)


def open_loop(
    port: int,
    requests_file: Path,
    seconds: float,
    rate: float,
    meters: dict[str, meters_.Meter],
) -> Measurement:
    """Latency at a fixed offered rate (always the Python generator)."""
    command = [
        sys.executable,
        "-m",
        "bench.pyload",
        "open",
        str(port),
        str(requests_file),
        str(seconds),
        str(rate),
    ]
    # The generator stamps each response as it wakes up to read it. Sharing
    # two cores with the server's threads, its wake-ups wait for a time slice,
    # and that wait would be counted as the server's latency: a client on its
    # own machine would not see it. Raised priority (where allowed) stands in
    # for that machine.
    m = _run_child(command, meters, nice=GENERATOR_NICE)
    m.generator = "python-open-loop"
    return m
