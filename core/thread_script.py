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
import weakref

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
        (reply,) = self.call_many([command])
        if isinstance(reply, Exception):
            raise reply
        return reply

    def call_many(self, commands: list[tuple]) -> list:
        """Pipelined: every reply is read, an error reply as its exception."""
        conn = self._connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as ex:
                    replies.append(ex)
            return replies
        except (redis.ConnectionError, redis.TimeoutError):
            self._local.conn = None
            raise
        except OSError as ex:
            self._local.conn = None
            raise redis.ConnectionError(str(ex)) from ex

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.forks != _forks[0]:
            conn = self._client.connection_pool.make_connection()
            self._local.conn, self._local.forks = conn, _forks[0]
        return conn


_shared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_sharing = threading.Lock()


def thread_connection(client: redis.Redis) -> ThreadConnection:
    """The one ``ThreadConnection`` of ``client``: every script and check on
    it uses the same connection per thread (not one each), and ``together``
    may pipeline any of them."""
    with _sharing:
        conn = _shared.get(client)
        if conn is None:
            conn = _shared[client] = ThreadConnection(client)
        return conn


class ThreadScript:
    """A Lua script called through its client's ``thread_connection``."""

    def __init__(self, client: redis.Redis, source: str):
        self._client = client
        self._script = client.register_script(source)
        self._conn = thread_connection(client)

    def command(self, keys: list, args: list) -> tuple:
        return ("EVALSHA", self._script.sha, len(keys), *keys, *args)

    def load(self) -> None:
        """After Redis restarted or flushed its scripts."""
        self._client.script_load(self._script.script)

    def __call__(self, keys: list, args: list):
        command = self.command(keys, args)
        try:
            return self._conn.call(*command)
        except redis.exceptions.NoScriptError:
            self.load()
            return self._conn.call(*command)

    def together(self, *calls: tuple[ThreadScript, list, list]) -> list:
        """``(script, keys, args)`` calls, this script's and others', in one
        round trip on this thread's connection; their replies in order. A
        script Redis did not know is loaded and run again after the others."""
        commands = [script.command(keys, args) for script, keys, args in calls]
        replies = self._conn.call_many(commands)
        unknown = [
            i
            for i, reply in enumerate(replies)
            if isinstance(reply, redis.exceptions.NoScriptError)
        ]
        for i in unknown:
            calls[i][0].load()
        if unknown:
            again = self._conn.call_many([commands[i] for i in unknown])
            for i, reply in zip(unknown, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies
