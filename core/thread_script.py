"""Redis calls on a connection of the calling thread's own.

The hot paths (a timeline page, every request's token denylist check) make one
Redis call each; going through redis-py's pool, retry wrapper and
instrumentation cost about as much CPU as the call's own socket work
(bench/README.md, profiles). Here each thread keeps one connection built with
the pool's settings (same timeouts) and talks to it directly. Errors surface as
redis-py's exceptions, so callers fall back as they do for any Redis failure.
"""

from __future__ import annotations

import os
import threading

import redis

# Forks seen by this process: a connection made before a fork is the
# parent's. (Counting them spares a getpid() system call on every request.)
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)


class ThreadConnection:
    def __init__(self, client: redis.Redis):
        self._client = client
        self._local = threading.local()

    def call(self, *command):
        conn = self._connection()
        try:
            conn.send_command(*command)
            return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            self._local.conn = None  # a new connection next time
            raise
        except OSError as ex:  # as redis-py would report it: callers catch those
            self._local.conn = None
            raise redis.ConnectionError(str(ex)) from ex

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.forks != _forks[0]:
            conn = self._client.connection_pool.make_connection()
            self._local.conn, self._local.forks = conn, _forks[0]
        return conn


class ThreadScript:
    """A Lua script called through a ``ThreadConnection``."""

    def __init__(self, client: redis.Redis, source: str):
        self._client = client
        self._script = client.register_script(source)
        self._conn = ThreadConnection(client)

    def __call__(self, keys: list, args: list):
        command = ("EVALSHA", self._script.sha, len(keys), *keys, *args)
        try:
            return self._conn.call(*command)
        except redis.exceptions.NoScriptError:
            # Redis restarted or flushed its scripts: load once, try again
            self._client.script_load(self._script.script)
            return self._conn.call(*command)
