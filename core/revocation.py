"""Token revocation: a Redis denylist backed by a durable Postgres copy.

Logout, refresh-token reuse, password changes and account deletion revoke
tokens at once by ``jti``, by refresh family or by user. Entries expire with the
longest token they can affect. Redis answers the hot-path check; a sentinel key
tells a flushed Redis from an empty denylist, and the list is then reloaded
from Postgres. If Redis is down the check asks Postgres directly.
"""

from __future__ import annotations

import contextlib

import redis

from core import db
from core.thread_script import thread_connection

JTI, FAMILY, USER = "jti", "family", "user"


class Denylist:
    def __init__(self, redis_client: redis.Redis, prefix: str):
        self._redis = redis_client
        self._fast = thread_connection(redis_client)  # every request checks
        self._prefix = f"{prefix}deny:"
        self._sentinel = f"{prefix}deny:loaded"

    def _key(self, kind: str, value: str) -> str:
        return f"{self._prefix}{kind}:{value}"

    def revoke(self, kind: str, value: str, ttl_s: int) -> None:
        """Revoke for ``ttl_s`` seconds (call inside or after the DB transaction)."""
        db.execute(
            "INSERT INTO revocations (kind, value, expires_at)"
            " VALUES (%s, %s, now() + make_interval(secs => %s))"
            " ON CONFLICT (kind, value) DO UPDATE"
            " SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)",
            (kind, str(value), ttl_s),
        )
        # If Redis is away, Postgres holds it and a returning Redis is reloaded.
        with contextlib.suppress(redis.RedisError):
            self._redis.set(self._key(kind, str(value)), 1, ex=ttl_s)

    def keys(self, jti: str, family: str, user_id: int) -> list[str]:
        """What a check reads: the sentinel, then the three possible entries.

        Hot read routes hand these to their page script instead of a round
        trip of their own (see ``api.middleware.Authentication``)."""
        return [
            self._sentinel,
            self._key(JTI, jti),
            self._key(FAMILY, family),
            self._key(USER, str(user_id)),
        ]

    def is_revoked(self, jti: str, family: str, user_id: int) -> bool:
        keys = self.keys(jti, family, user_id)
        try:
            values = self._fast.call("MGET", *keys)
            if values[0] is None:
                self.reload()
                values = self._fast.call("MGET", *keys)
            return any(v is not None for v in values[1:])
        except redis.RedisError:
            return self._revoked_in_postgres(jti, family, user_id)

    def _revoked_in_postgres(self, jti: str, family: str, user_id: int) -> bool:
        row = db.fetchone(
            "SELECT 1 FROM revocations WHERE expires_at > now() AND ("
            " (kind = 'jti' AND value = %s) OR (kind = 'family' AND value = %s)"
            " OR (kind = 'user' AND value = %s)) LIMIT 1",
            (jti, family, str(user_id)),
        )
        return row is not None

    def reload(self) -> None:
        """Copy every live revocation from Postgres into Redis, then mark it loaded."""
        rows = db.fetchall(
            "SELECT kind, value, ceil(extract(epoch FROM expires_at - now()))::int"
            " FROM revocations WHERE expires_at > now()"
        )
        pipe = self._redis.pipeline(transaction=False)
        for kind, value, ttl in rows:
            pipe.set(self._key(kind, value), 1, ex=max(1, ttl))
        pipe.set(self._sentinel, 1)
        pipe.execute()
        db.execute(
            "DELETE FROM revocations WHERE expires_at < now() - interval '1 day'"
        )
