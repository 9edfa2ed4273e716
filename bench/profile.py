"""Where the time goes: py-spy samples of the server while it is under load.

``python -m bench --profile`` records the gunicorn workers (and the Dramatiq
worker during a fan-out burst) with py-spy from PyPI, installed on first use
under var/bench/tools. Only samples of threads holding the GIL are kept
(``--gil``): that is the Python work a worker process can do one thread at a
time, while waits for Postgres or Redis show up in their own CPU meters. Each
sample goes to the bucket of the innermost frame that matches a rule.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import infra, load, reads, world, writes
from bench.client import Api
from bench.phases import log

TOOLS = infra.VAR / "tools"
RATE_HZ = 200
# (bucket, substrings of a frame "function (path)"), checked leaf first
BUCKETS = (
    ("postgres driver (psycopg2, peewee pool)", ("psycopg2", "peewee.py")),
    ("redis client (redis-py)", ("redis/",)),
    ("JWT verify (PyJWT, cryptography)", ("jwt/", "cryptography", "tokens.py")),
    ("token denylist check", ("revocation.py",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("logging (incl. access log)", ("logging/", "logs.py", "access_log.py")),
    ("hydrate + render tweets", ("hydrate.py", "render.py")),
    ("timeline merge + decode", ("timelines.py", "timeline_store.py")),
    ("tweet service", ("services/tweets.py", "outbox.py")),
    ("argon2", ("argon2",)),
    ("dramatiq + pika", ("dramatiq/", "pika/")),
    ("api resources + middleware", ("api/",)),
    ("falcon", ("falcon/",)),
    ("gunicorn", ("gunicorn/",)),
)


def pyspy() -> str:
    binary = TOOLS / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(TOOLS),
             "py-spy"],
            check=True,
            capture_output=True,
            timeout=600,
        )  # fmt: skip
    return str(binary)


def start(pid: int, seconds: float, output: Path) -> subprocess.Popen:
    """Sample ``pid`` and its children for ``seconds`` into collapsed stacks."""
    return subprocess.Popen(
        [
            pyspy(), "record", "--pid", str(pid), "--subprocesses",
            "--rate", str(RATE_HZ), "--duration", str(max(1, round(seconds))),
            "--gil", "--format", "raw", "--nolineno", "--output", str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _frames(stack: str) -> list[str]:
    # py-spy raw: "process (pid);thread;frame;frame... count", root first
    return [
        f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))
    ]


def summarize(raw: Path, top: int = 12) -> dict:
    buckets: Counter = Counter()
    leaves: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n, frames = int(count), _frames(stack)
        total += n
        if frames:
            leaves[frames[-1]] += n
        for frame in set(frames):
            if any(f"({pkg}/" in frame for pkg in ("core", "api", "workers")):
                inclusive[frame] += n
        buckets[_bucket(frames)] += n

    def share(counter: Counter) -> list[list]:
        return [[k, round(100 * v / total, 1)] for k, v in counter.most_common(top)]

    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "buckets_pct": share(buckets),
        "self_pct": share(leaves),
        "inclusive_app_pct": share(inclusive),
    }


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(needle in frame for needle in needles):
                return name
    return "other (stdlib, interpreter)"


def profile_phase(w: world.World) -> dict:
    """py-spy over home reads, tweet creates and a fan-out burst."""
    out_dir = infra.VAR / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds = max(3.0, w.profile.read_s)
    files = reads.request_files(w)
    results = {}
    api = w.services["api"].proc.pid
    for what in ("home", "create"):
        log(f"profiling the API under {what} load ({seconds:.0f}s)")
        raw = out_dir / f"{w.profile.name}-{what}.txt"
        path = files["home"] if what == "home" else writes.create_requests(w)
        recorder = start(api, seconds, raw)
        load.closed(w.wrk, w.ports["api"], path, seconds, w.profile.connections, {})
        recorder.wait(timeout=60)
        results[what] = {**summarize(raw), "raw": str(raw)}
    writes.drain(w)
    log("profiling the worker during a fan-out burst")
    raw = out_dir / f"{w.profile.name}-fanout-worker.txt"
    recorder = start(w.services["worker"].proc.pid, seconds, raw)
    time.sleep(1)  # let py-spy attach before the burst
    api = Api(w.ports["api"])
    probe = w.data.probes[-1]
    for k in range(w.profile.fanout_burst):
        api.tweet(w.tokens[probe], f"profiled burst {k}")
    api.close()
    recorder.wait(timeout=60)  # the burst need not finish: the run ends here
    results["fanout_worker"] = {**summarize(raw), "raw": str(raw)}
    return results
