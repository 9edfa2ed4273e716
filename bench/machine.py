"""What the figures were measured on: machine, versions, settings, data set."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata

import psycopg2
import redis

from bench import infra, world
from core.settings import PROJECT_ROOT


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe(wrk: str | None) -> dict:
    conn = psycopg2.connect(infra.PG_ADMIN)
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        postgres = cur.fetchone()[0]
        cur.execute("SHOW synchronous_commit")
        sync_commit = cur.fetchone()[0]
    conn.close()
    info = redis.Redis(host="127.0.0.1", port=6379).info("server")
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        ),
        "kernel": platform.release(),
        "loadavg_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "postgres": postgres,
        "postgres_synchronous_commit": sync_commit,
        "redis": info.get("redis_version"),
        "rabbitmq": _first_line(["rabbitmqctl", "-q", "version"]),
        "load_generator": _first_line([wrk, "-v"]) if wrk else "bench.pyload",
        "packages": {
            name: metadata.version(name)
            for name in (
                "falcon",
                "gunicorn",
                "dramatiq",
                "peewee",
                "psycopg2-binary",
                "redis",
                "orjson",
                "PyJWT",
                "argon2-cffi",
            )
        },
    }


def settings(w: world.World) -> dict:
    s = w.settings
    return {
        "web_workers": s.web_workers,
        "web_threads": s.web_threads,
        "worker_processes": world.WORKER_PROCESSES,
        "worker_threads": world.WORKER_THREADS,
        "db_pool_size": s.db_pool_size,
        "fanout_threshold": s.fanout_threshold,
        "fanout_chunk_size": s.fanout_chunk_size,
        "timeline_cap": s.timeline_cap,
        "argon2": [s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism],
        "rate_limits_enabled": s.rate_limits_enabled,
        "load_connections": w.profile.connections,
    }


def dataset(w: world.World) -> dict:
    data = w.data
    followers = [len(data.followers(u)) for u in range(len(data.user_ids))]
    regular = sorted((followers[u] for u in data.regular()), reverse=True)
    return {
        "seed": data.seed,
        "users": len(data.user_ids),
        "follows": sum(len(f) for f in data.followees),
        "tweets": len(data.tweets),
        "retweets": sum(1 for t in data.tweets if t[3] is not None),
        "replies": sum(1 for t in data.tweets if t[2] is not None),
        "likes": len(data.likes),
        "big_account_followers": [followers[b] for b in data.big],
        "probe_followers": [followers[p] for p in data.probes],
        "regular_followers_max_median": [regular[0], regular[len(regular) // 2]],
        "readers": len(w.readers),
        "build_seconds": w.timings,
    }


def command_line() -> str:
    exe = os.path.relpath(sys.executable, PROJECT_ROOT)
    return " ".join([exe, "-m", "bench", *sys.argv[1:]])
