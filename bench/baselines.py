"""The physical limits each figure is divided by, measured in the same run."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from urllib.parse import urlsplit

import psycopg2
from argon2 import PasswordHasher

from bench import infra
from core.settings import Settings

ZADD_KEYS = 10_000


def insert_rate(dsn: str, seconds: float) -> dict:
    """Single-row INSERTs, each its own commit, from one connection."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS bench_insert (LIKE tweets"
                " INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)"
            )
            cur.execute("TRUNCATE bench_insert")
            n, started = 0, time.perf_counter()
            deadline = started + seconds
            while time.perf_counter() < deadline:
                n += 1
                cur.execute(
                    "INSERT INTO bench_insert (id, author_id, content)"
                    " VALUES (%s, %s, %s)",
                    (n, n % 1000, "a baseline row of ordinary tweet length"),
                )
            elapsed = time.perf_counter() - started
            cur.execute("DROP TABLE bench_insert")
    finally:
        conn.close()
    return {"rate": n / elapsed, "rows": n, "seconds": round(elapsed, 2)}


def zadd_rate(names: infra.Names, requests: int) -> dict:
    """redis-benchmark: pipelined (-P 16) ZADDs into 10k keys of our own prefix."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise RuntimeError("redis-benchmark not found (Debian package redis-tools)")
    prefix = f"{names.redis_prefix}zadd:"
    command = [
        binary, "-h", "127.0.0.1", "-p", str(urlsplit(names.redis_url).port),
        "--dbnum", str(infra.REDIS_DB),
        "-P", "16", "-n", str(requests), "-r", str(ZADD_KEYS), "--csv",
        "zadd", f"{prefix}__rand_int__", "__rand_int__", "m__rand_int__",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=300, check=True
        )
    finally:
        infra.delete_prefix(infra.redis_client(names), prefix)
    rows = list(csv.reader(io.StringIO(done.stdout)))
    rate = float(rows[-1][1])
    return {"rate": rate, "requests": requests, "command": " ".join(command[1:])}


def hash_rate(settings: Settings, seconds: float) -> dict:
    """argon2id hashes per second on one core, with the server's parameters."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or n < 3:
        hasher.hash("correct horse battery staple")
        n += 1
    elapsed = time.perf_counter() - started
    return {"rate": n / elapsed, "hashes": n, "seconds": round(elapsed, 2)}


# OWASP Password Storage Cheat Sheet: argon2id with one of these (m KiB, t), p=1.
OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


def owasp_ok(settings: Settings) -> bool:
    return settings.argon2_parallelism >= 1 and any(
        settings.argon2_memory_kib >= m and settings.argon2_time_cost >= t
        for m, t in OWASP_ARGON2ID
    )
