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

import datetime
import logging

import redis
from peewee import EXCLUDED, SQL, fn

from core import outbox
from core.keys import Keys
from core.models import Revocation, seconds

log = logging.getLogger(__name__)

JTI, FAMILY, USER = "jti", "family", "user"
LOADED_TTL_S = 24 * 3600  # a user's entries are re-read from Postgres this often
# expired revocations are kept this long past their tokens' expiry, then pruned
PRUNE_AFTER = datetime.timedelta(days=1)


class Denylist:
    def __init__(self, redis_client, keys: Keys):
        self._redis = redis_client
        self._keys = keys

    def revoke(self, user_id: int, kind: str, value: str, ttl_s: int) -> None:
        """Revoke for ``ttl_s`` seconds (call inside or after the DB transaction)."""
        value = str(value)
        (
            Revocation.insert(
                kind=kind,
                value=value,
                expires_at=fn.now() + datetime.timedelta(seconds=ttl_s),
                user_id=user_id,
            )
            .on_conflict(
                conflict_target=[Revocation.kind, Revocation.value],
                # a shorter revocation never shortens a longer one
                update={
                    Revocation.expires_at: fn.GREATEST(
                        Revocation.expires_at, EXCLUDED.expires_at
                    )
                },
            )
            .as_rowcount()
            .execute()
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
        return (
            Revocation.select(SQL("1"))
            .where(
                Revocation.expires_at > fn.now(),
                ((Revocation.kind == JTI) & (Revocation.value == jti))
                | ((Revocation.kind == FAMILY) & (Revocation.value == family))
                | ((Revocation.kind == USER) & (Revocation.value == str(user_id))),
            )
            .exists()
        )

    def reload(self, user_id: int, jti: str = "", family: str = "") -> bool:
        """Copy the user's live revocations from Postgres into Redis, then mark
        them loaded; returns whether ``jti`` or ``family`` is among them."""
        ttl = fn.ceil(seconds(Revocation.expires_at - fn.now())).cast("int")
        rows = list(
            Revocation.select(Revocation.kind, Revocation.value, ttl.alias("ttl"))
            .where(Revocation.user_id == user_id, Revocation.expires_at > fn.now())
            .namedtuples()
        )
        pipe = self._redis.pipeline(transaction=False)
        for row in rows:
            key = self._keys.denied(user_id, row.kind, row.value)
            pipe.set(key, 1, ex=max(1, row.ttl))
        pipe.set(self._keys.deny_loaded(user_id), 1, ex=LOADED_TTL_S)
        pipe.execute()
        # the user's revocations of tokens that have expired anyway
        (
            Revocation.delete()
            .where(
                Revocation.user_id == user_id,
                Revocation.expires_at < fn.now() - PRUNE_AFTER,
            )
            .execute()
        )
        mine = {(JTI, jti), (FAMILY, family), (USER, str(user_id))}
        return any((row.kind, row.value) in mine for row in rows)
