"""Test helpers that tests import directly (conftest holds only fixtures)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import redis

RUN_ID = str(os.getpid())
REDIS_PREFIX = f"twtest:{RUN_ID}:"


def clear_redis_prefix(client: redis.Redis, prefix: str = REDIS_PREFIX) -> None:
    """Delete this run's keys only: other runs share the Redis database."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


class TcpProxy:
    """A loopback TCP proxy whose link can be cut and restored (fault tests).

    Cutting closes the listener and every open connection, as a broker restart
    or a network partition would; the real service is never touched.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener = None
        self._conns: list = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # shutdown() before close(): the other direction's thread is still
            # blocked reading one of these sockets, and that read keeps the
            # connection open after a mere close() (its peer never hears of it:
            # a killed worker's consumers stayed attached to RabbitMQ and took
            # their share of the next test's messages). shutdown() ends it for
            # the peer now and wakes that thread.
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        # shutdown() wakes the thread blocked in accept(), freeing the port
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._conns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
            self._conns = []


def postgres_home(user_id: int, limit: int = 20) -> list[int]:
    """The oracle of timelines.md straight from Postgres: tweets and retweets
    by the user or anyone they follow, newest first."""
    from core.db import database

    rows = database.execute_sql(
        "SELECT id FROM tweets WHERE author_id = %s OR author_id IN"
        " (SELECT followee_id FROM follows WHERE follower_id = %s)"
        " ORDER BY id DESC LIMIT %s",
        (user_id, user_id, limit),
    ).fetchall()
    database.close()
    return [r[0] for r in rows]


class RecordingEnv(dict):
    """An empty environment that remembers every name it was asked for, so the
    list of settings comes from ``Settings.from_env`` itself."""

    def __init__(self):
        super().__init__()
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return default

    def __getitem__(self, key):
        self.read.add(key)
        raise KeyError(key)

    def __contains__(self, key):
        self.read.add(key)
        return False


def settings_read() -> set[str]:
    """Every environment variable ``core.settings`` reads."""
    from core.settings import Settings

    env = RecordingEnv()
    Settings.from_env(env)
    return env.read


def counter_value(name: str, **labels) -> float:
    """A Prometheus counter's value in this process (read through the
    registry, the metrics' public face)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(f"{name}_total", labels) or 0.0


def timeline_ids(deps, kind: str, user_id: int) -> list[int] | None:
    """Tweet ids of a user's timeline key as Redis holds it (None: no key)."""
    timelines = deps.timelines
    timeline = timelines.store.read([timelines.key_of(kind, user_id)])[0]
    return None if timeline is None else [e[0] for e in timeline.entries()]
