"""The run's own names on the shared services: database, vhost, Redis prefix.

Every run gets ``twitter_bench_<pid>`` (database and RabbitMQ vhost) and keys
under ``twbench:<pid>:`` in Redis database 14, so it never touches a developer's
instance, the tests, or another bench run. Leftovers of runs that died (their
pid is gone) are removed at start; the run removes its own at the end.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis
from redis.cluster import RedisCluster

from bench import server
from core import keyfiles
from core.settings import PROJECT_ROOT

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_DB = 14
NAME = re.compile(r"^twitter_bench_(\d+)$")
VAR = PROJECT_ROOT / "var" / "bench"
# Process environment kept for the children; everything else is ours.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")


# Which Redis the services use: the machine's (single, or a server of the run's
# own when single_url names one) or a local cluster.
REDIS = {"mode": "single", "cluster_url": "", "single_url": ""}


@dataclass(frozen=True)
class Names:
    run_id: str

    @property
    def database(self) -> str:
        return f"twitter_bench_{self.run_id}"

    @property
    def vhost(self) -> str:
        return f"twitter_bench_{self.run_id}"

    @property
    def redis_prefix(self) -> str:
        return f"twbench:{self.run_id}:"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.database}"

    @property
    def redis_url(self) -> str:
        if REDIS["mode"] == "cluster":
            return REDIS["cluster_url"]
        return REDIS["single_url"] or f"redis://127.0.0.1:6379/{REDIS_DB}"

    @property
    def broker_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    @property
    def workdir(self) -> Path:
        return VAR / self.run_id


def _admin(*statements: str) -> list:
    conn = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    conn.autocommit = True
    out = []
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
            out.append(cur.fetchall() if cur.description else None)
    conn.close()
    return out


def rabbitmqctl(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def redis_client(names: Names):
    if REDIS["mode"] == "cluster":
        return RedisCluster.from_url(names.redis_url, socket_timeout=30)
    return redis.Redis.from_url(names.redis_url, socket_timeout=30)


def use_redis_cluster(url: str = "redis://127.0.0.1:7101/0") -> None:
    """Run the services on the local Redis Cluster (scripts/redis-cluster.sh)."""
    subprocess.run(
        [str(PROJECT_ROOT / "scripts/redis-cluster.sh"), "start"], check=True
    )
    REDIS.update(mode="cluster", cluster_url=url)


def use_private_redis() -> None:
    """Run the whole bench on a Redis server of its own (see
    :func:`private_redis`), stopped when the process ends."""
    stack = contextlib.ExitStack()
    stack.enter_context(private_redis(VAR / f"redis-{os.getpid()}"))
    atexit.register(stack.close)


@contextlib.contextmanager
def private_redis(workdir: Path):
    """A Redis server of the run's own (no persistence) for the block: its
    ``INFO cpu`` then counts this run alone, where the machine's Redis also
    serves the neighbours' tests (at a few operations a second, their share
    would swamp a per-operation figure)."""
    binary = shutil.which("redis-server")
    if binary is None:  # the machine's Redis, figures with the neighbours' share
        yield None
        return
    port = server.free_ports(1)[0]
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/{REDIS_DB}"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        REDIS["single_url"] = url
        yield url
    finally:
        REDIS["single_url"] = ""
        proc.terminate()
        proc.wait(10)


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` (and only those)."""
    deleted, batch = 0, []
    for key in client.scan_iter(match=f"{prefix}*", count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def create(names: Names) -> None:
    """Fresh database and vhost for this run (the schema comes from migrations)."""
    _admin(
        f"DROP DATABASE IF EXISTS {names.database} WITH (FORCE)",
        f"CREATE DATABASE {names.database}",
    )
    rabbitmqctl("add_vhost", names.vhost, check=False)
    rabbitmqctl("set_permissions", "-p", names.vhost, "guest", ".*", ".*", ".*")
    delete_prefix(redis_client(names), names.redis_prefix)
    names.workdir.mkdir(parents=True, exist_ok=True)


def remove(names: Names) -> None:
    delete_prefix(redis_client(names), names.redis_prefix)
    rabbitmqctl("delete_vhost", names.vhost, check=False)
    _admin(f"DROP DATABASE IF EXISTS {names.database} WITH (FORCE)")


def remove_stale() -> list[str]:
    """Remove what earlier runs left behind when they died (pid no longer alive)."""
    rows = _admin("SELECT datname FROM pg_database")[0]
    vhosts = rabbitmqctl("list_vhosts", "name", check=False).split()
    run_ids = {m.group(1) for m in map(NAME.match, [r[0] for r in rows] + vhosts) if m}
    run_ids |= {d.name for d in VAR.glob("[0-9]*") if d.is_dir()}
    stale = [r for r in run_ids if not Path(f"/proc/{r}").exists()]
    for run_id in stale:
        remove(Names(run_id))
        shutil.rmtree(Names(run_id).workdir, ignore_errors=True)
    return sorted(stale)


def ensure_keys() -> tuple[str, str]:
    """The bench's JWT keypair (made once, kept under var/)."""
    private, public = VAR / "keys" / "private.pem", VAR / "keys" / "public"
    if not private.exists() or not any(public.glob("*.pem")):
        keyfiles.write_keypair(private, public)
    return str(private), str(public)


def service_env(
    names: Names, profile, ports: dict[str, int], metrics_dir: Path
) -> dict:
    """Environment of the API and worker processes: production defaults for
    everything not named here (workers, threads, pool sizes, argon2 costs)."""
    private, public = ensure_keys()
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.update(
        APP_ENV="development",
        DATABASE_URL=names.database_url,
        REDIS_MODE=REDIS["mode"],
        REDIS_URL=names.redis_url,
        REDIS_PREFIX=names.redis_prefix,
        BROKER_URL=names.broker_url,
        JWT_PRIVATE_KEY_PATH=private,
        JWT_PUBLIC_KEYS_PATH=public,
        CURSOR_SECRET="bench-cursor-secret-" + "x" * 32,
        # production configuration: the limiter runs, with limits no bench
        # load reaches
        RATE_LIMITS_ENABLED="true",
        RATE_LIMIT_READS="1000000000 per minute",
        RATE_LIMIT_WRITES="1000000000 per minute",
        RATE_LIMIT_ANONYMOUS="1000000000 per minute",
        RATE_LIMIT_AUTH="1000000000 per minute",
        FANOUT_THRESHOLD=str(profile.fanout_threshold),
        TIMELINE_CAP=str(profile.timeline_cap),
        # tokens are minted once and must outlive the run
        ACCESS_TOKEN_TTL_S="14400",
        PORT=str(ports["api"]),
        WORKER_METRICS_PORT=str(ports["worker_metrics"]),
        METRICS_PORT=str(ports["metrics"]),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        PYTHONUNBUFFERED="1",
    )
    return env
