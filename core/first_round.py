"""A request's first Redis round trip, shared by the layers that need one."""

from __future__ import annotations

import redis

from core.redis_client import pipeline, run


class FirstRound:
    """A request's first Redis round trip, shared by the layers that need one.

    Commands are queued as Redis spells them; :meth:`run` sends them in one pipeline
    (one round trip per node involved) and hands the replies to every check
    registered with :meth:`before_use`, which may refuse the request (the
    token's revocation) before anything else looks at the replies.
    """

    def __init__(self, client):
        self._pipe = pipeline(client)
        self._count = 0
        self._checks: list = []
        self.replies: list | None = None

    def add(self, *command) -> int:
        """Queue a command (e.g. ``"GET", key``); returns its reply's index."""
        self._pipe.execute_command(*command)
        self._count += 1
        return self._count - 1

    def before_use(self, check) -> None:
        self._checks.append(check)

    def run(self) -> list:
        if self.replies is None:
            try:
                self.replies = run(self._pipe, raise_on_error=False)
            except redis.RedisError as ex:
                self.replies = [ex] * self._count
            for check in self._checks:
                check(self.replies)
        return self.replies
