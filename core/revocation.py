"""Token revocation: a per-user Redis denylist backed by a durable Postgres copy.

Logout, refresh-token reuse, password changes and account deletion revoke
tokens at once by ``jti``, by refresh family or by user. Every entry lives under
its user's hash tag (``core.keys``), so a request's check reads one node, in
the request's first round trip (``api.middleware``). A per-user marker tells a
flushed Redis from an empty list: without it the user's entries are reloaded
from Postgres. If Redis is down the check asks Postgres directly.

A revocation is never lost to a Redis outage: Postgres has it first, and when
the Redis write fails a ``sync_denylist`` job (outbox) copies the user's
entries into Redis as soon as it answers again.
"""

from __future__ import annotations

import logging

import redis

from core import db, outbox
from core.keys import Keys

log = logging.getLogger(__name__)

JTI, FAMILY, USER = "jti", "family", "user"
LOADED_TTL_S = 24 * 3600  # a user's entries are re-read from Postgres this often


class Denylist:
    def __init__(self, redis_client, keys: Keys):
        self._redis = redis_client
        self._keys = keys

    def revoke(self, user_id: int, kind: str, value: str, ttl_s: int) -> None:
        """Revoke for ``ttl_s`` seconds (call inside or after the DB transaction)."""
        value = str(value)
        db.execute(
            "INSERT INTO revocations (kind, value, expires_at, user_id)"
            " VALUES (%s, %s, now() + make_interval(secs => %s), %s)"
            " ON CONFLICT (kind, value) DO UPDATE"
            " SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)",
            (kind, value, ttl_s, user_id),
        )
        try:
            self._redis.set(self._keys.denied(user_id, kind, value), 1, ex=ttl_s)
        except redis.RedisError as ex:
            log.error("denylist write for user %s failed, catching up: %s", user_id, ex)
            outbox.enqueue(outbox.SYNC_DENYLIST, user_id)

    def check_keys(self, user_id: int, jti: str, family: str) -> list[str]:
        """What a check reads, one user's keys: the marker, then the entries."""
        return [
            self._keys.deny_loaded(user_id),
            self._keys.denied(user_id, JTI, jti),
            self._keys.denied(user_id, FAMILY, family),
            self._keys.denied(user_id, USER, str(user_id)),
        ]

    def queue_check(self, pipe, user_id: int, jti: str, family: str) -> None:
        """Add the check to a request's first pipeline (see :meth:`verdict`)."""
        pipe.mget(self.check_keys(user_id, jti, family))

    def verdict(self, values, user_id: int, jti: str, family: str) -> bool:
        """Revoked? From the check's reply (an exception if Redis failed)."""
        if isinstance(values, Exception):
            return self._revoked_in_postgres(user_id, jti, family)
        if values[0] is None:  # not loaded: Redis was flushed, or it expired
            try:
                return self.reload(user_id, jti, family)
            except redis.RedisError:
                return self._revoked_in_postgres(user_id, jti, family)
        return any(v is not None for v in values[1:])

    def is_revoked(self, user_id: int, jti: str, family: str) -> bool:
        try:
            values = self._redis.mget(self.check_keys(user_id, jti, family))
        except redis.RedisError as ex:
            values = ex
        return self.verdict(values, user_id, jti, family)

    def _revoked_in_postgres(self, user_id: int, jti: str, family: str) -> bool:
        row = db.fetchone(
            "SELECT 1 FROM revocations WHERE expires_at > now() AND ("
            " (kind = 'jti' AND value = %s) OR (kind = 'family' AND value = %s)"
            " OR (kind = 'user' AND value = %s)) LIMIT 1",
            (jti, family, str(user_id)),
        )
        return row is not None

    def reload(self, user_id: int, jti: str = "", family: str = "") -> bool:
        """Copy the user's live revocations from Postgres into Redis, then mark
        them loaded; returns whether ``jti`` or ``family`` is among them."""
        rows = db.fetchall(
            "SELECT kind, value, ceil(extract(epoch FROM expires_at - now()))::int"
            " FROM revocations WHERE user_id = %s AND expires_at > now()",
            (user_id,),
        )
        pipe = self._redis.pipeline(transaction=False)
        for kind, value, ttl in rows:
            pipe.set(self._keys.denied(user_id, kind, value), 1, ex=max(1, ttl))
        pipe.set(self._keys.deny_loaded(user_id), 1, ex=LOADED_TTL_S)
        pipe.execute()
        # the user's revocations of tokens that have expired anyway
        db.execute(
            "DELETE FROM revocations WHERE user_id = %s"
            " AND expires_at < now() - interval '1 day'",
            (user_id,),
        )
        mine = {(JTI, jti), (FAMILY, family), (USER, str(user_id))}
        return any((kind, value) in mine for kind, value, _ in rows)
