"""Read-side caches in Redis: what a warm page is rendered from, with no SQL.

Each part under the hash tag of the user it belongs to (``core.keys``): per tweet
its counts and card (:func:`card`), per author the username, per username the id,
per reader the *social* hash (``p`` pulled authors followed, ``h`` the horizon
below which flags were not loaded, ``f<id>`` per followed user, per tweet id 1
liked, 2 retweeted, 3 both). Readers only add; writers correct after their
commit. Why: docs/design.md#the-read-cache
"""

from __future__ import annotations

import logging
import struct
from typing import NamedTuple

import orjson
import redis

from core import db, metrics
from core.keys import NAME_TTL_S, SOCIAL_TTL_S, SPOIL_S, TWEET_TTL_S, Keys, spoiled
from core.push_pull import PULLED_SQL
from core.redis_client import Script, execute

log = logging.getLogger(__name__)

LIKES_LOADED = 2000  # newest likes (and retweets) per reader kept in the hash
PULLED, HORIZON = "p", "h"
_COUNTS = struct.Struct(">II")

# Readers add a part (a tweet, a name, a username's id) unless a delete
# spoiled it. KEYS: the part, its spoil marker. ARGV: value, ttl.
_FILL = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX')
return 1
"""

# Writers correct a cached tweet's counts in place (a missing one stays so).
_SET_COUNTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SETRANGE', KEYS[1], 0, ARGV[1])
return 1
"""

# Store a loaded social hash unless the generation moved meanwhile.
# KEYS: social, generation (one user's). ARGV: generation read before
# loading, ttl, then the hash's field/value pairs.
_STORE_SOCIAL = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Hand-written: loaded on a home read whose social hash is missing (see
# docs/design.md, "Queries"). Rows: kind ('f' followed, 'l' liked, 'r' retweeted),
# ident (a user or tweet id), big (a followed author who is pulled).
_SOCIAL_SQL = (
    "SELECT 'f' AS kind, f.followee_id AS ident,"
    f" {PULLED_SQL} AS big"
    " FROM follows f JOIN users u ON u.id = f.followee_id"
    " WHERE f.follower_id = %(user)s"
    " UNION ALL (SELECT 'l', tweet_id, false FROM likes WHERE user_id = %(user)s"
    "  ORDER BY tweet_id DESC LIMIT %(n)s)"
    " UNION ALL (SELECT 'r', retweet_of_id, false FROM tweets"
    "  WHERE author_id = %(user)s AND retweet_of_id IS NOT NULL"
    "  ORDER BY retweet_of_id DESC LIMIT %(n)s)"
)


class Social:
    """A reader's pulled authors and flag horizon, as loaded or cached."""

    __slots__ = ("pulled", "horizon")

    def __init__(self, pulled: list[int], horizon: int):
        self.pulled, self.horizon = pulled, horizon

    @classmethod
    def parse(cls, pulled: bytes, horizon: bytes) -> Social:
        ids = [int(a) for a in pulled.split(b",") if a] if pulled else []
        return cls(ids, int(horizon or 0))


class ReadCache:
    def __init__(self, client, keys: Keys, threshold: int):
        self.redis = client
        self.keys = keys
        self.threshold = threshold
        self._fill = Script(client, _FILL)
        self._set_counts = Script(client, _SET_COUNTS)
        self._store_social = Script(client, _STORE_SOCIAL)

    # ------------------------------------------------------------ readers add
    def fill(self, tweets) -> None:
        """Cache what a Postgres-hydrated page showed (see ``core.hydrate``)."""
        calls = self.fill_calls(tweets)
        if calls:
            self._quietly(lambda: execute(self.redis, calls), "fill")

    def fill_calls(self, tweets) -> list:
        """The script calls of :meth:`fill`, for a caller's own pipeline."""
        calls: list = []
        for tweet in tweets:
            for t in (tweet, tweet["retweet_of"]):
                if t is None:
                    continue
                key = self.keys.tweet(int(t["author_id"]), int(t["id"]))
                value = counts(t["like_count"], t["retweet_count"]) + card(t)
                calls.append((self._fill, (key, spoiled(key)), (value, TWEET_TTL_S)))
                name = self.keys.name(int(t["author_id"]))
                calls.append(
                    (self._fill, (name, spoiled(name)), (t["user_id"], NAME_TTL_S))
                )
        return calls

    def user_id(self, username: str) -> int | None:
        try:
            value = self.redis.get(self.keys.user_id(username))
        except redis.RedisError:
            return None
        return int(value) if value is not None else None

    def remember_user_id(self, username: str, user_id: int) -> None:
        """username -> id, and the user's name (which checks guessed ids)."""
        uid, name = self.keys.user_id(username), self.keys.name(user_id)
        calls = [
            (self._fill, (uid, spoiled(uid)), (user_id, NAME_TTL_S)),
            (self._fill, (name, spoiled(name)), (username, NAME_TTL_S)),
        ]
        self._quietly(lambda: execute(self.redis, calls), "fill")

    # ----------------------------------------------------------------- social
    def load_social(self, user_id: int) -> tuple[Social, bool]:
        """A reader's social hash from Postgres, and whether it was stored (not
        if one of their writes moved it meanwhile)."""
        generation = self.redis.get(self.keys.generation(user_id))
        rows = db.fetchall(
            _SOCIAL_SQL,
            {"user": user_id, "threshold": self.threshold, "n": LIKES_LOADED},
        )
        flags: dict[int, int] = {}
        follows, pulled = [], []
        for row in rows:
            if row.kind == "f":
                follows.append(row.ident)
                if row.big:
                    pulled.append(row.ident)
            else:  # 1 liked, 2 retweeted
                bit = 1 if row.kind == "l" else 2
                flags[row.ident] = flags.get(row.ident, 0) | bit
        social = Social(pulled, _horizon(rows))
        fields: list = [PULLED, ",".join(map(str, pulled)), HORIZON, social.horizon]
        for ident in follows:
            fields += [followed(ident), 1]
        for ident, bits in flags.items():
            fields += [ident, bits]
        metrics.CACHE_SOCIAL_LOADS.inc()
        stored = self._store_social(
            (self.keys.social(user_id), self.keys.generation(user_id)),
            generation or b"0",
            SOCIAL_TTL_S,
            *fields,
        )
        return social, bool(stored)

    # ------------------------------------------------ writers, after a commit
    def social_changed(self, *user_ids: int) -> None:
        """Readers followed, unfollowed, liked or retweeted: reload their hashes."""
        pipe = self.redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.incr(self.keys.generation(user_id))
            pipe.expire(self.keys.generation(user_id), 2 * SOCIAL_TTL_S)
            pipe.delete(self.keys.social(user_id))
        if user_ids:
            self._quietly(pipe.execute, "social")

    def counts_changed(self, rows) -> None:
        """``(tweet id, author id, likes, retweets)`` rows read after the commit
        that changed them, written in one round trip (readers only add)."""
        calls = [
            (self._set_counts, self.keys.tweet(author_id, tweet_id), (counts(*n),))
            for tweet_id, author_id, *n in rows
        ]
        if calls:
            self._quietly(lambda: execute(self.redis, calls), "counts")

    def renamed(self, user_id: int, old: str, new: str) -> None:
        self._spoil([self.keys.user_id(old)])
        self._quietly(
            lambda: self.redis.set(self.keys.name(user_id), new, ex=NAME_TTL_S), "name"
        )

    def tweets_deleted(self, entries) -> None:
        """``(tweet id, author id)`` pairs whose tweets are gone."""
        self._spoil([self.keys.tweet(author, tweet) for tweet, author in entries])

    def user_deleted(self, user_id: int, username: str) -> None:
        """Their tweets now miss their author, so Postgres is asked (and says gone)."""
        self._spoil([self.keys.name(user_id), self.keys.user_id(username)])

    def _spoil(self, keys: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.delete(key)
            pipe.set(spoiled(key), 1, ex=SPOIL_S)
        self._quietly(pipe.execute, "spoil")

    @staticmethod
    def _quietly(call, what: str) -> None:
        try:
            call()
        except redis.RedisError as ex:
            # Entries expire on their own; until then the long path (Postgres)
            # serves whatever the cache lacks.
            log.warning("read cache %s not updated: %s", what, ex)


def followed(user_id: int) -> str:
    """The social hash's field for a followed user."""
    return f"f{user_id}"


def card(tweet: dict) -> bytes:
    """What never changes of a rendered tweet: the ``fixed`` of
    ``core.render.tweet``, and the original's id and author for a retweet."""
    original = tweet["retweet_of"]
    return orjson.dumps(
        [
            int(tweet["id"]),
            int(tweet["author_id"]),
            tweet["tweet_content"],
            tweet["created_at"],
            int(tweet["reply_to"]) if tweet["reply_to"] is not None else None,
            int(original["id"]) if original else None,
            int(original["author_id"]) if original else None,
        ]
    )


class Card(NamedTuple):
    """What never changes of a cached tweet: the ``fixed`` fields of
    ``core.render.tweet``, and for a retweet its original's id and author."""

    fixed: dict
    original: int | None
    by: int | None


def card_of(raw: bytes) -> Card:
    """The card of a cached tweet (the JSON after its counts)."""
    tweet_id, author_id, content, created_at, reply_to, original, by = orjson.loads(
        raw[_COUNTS.size :]
    )
    fixed = {
        "id": tweet_id,
        "author_id": author_id,
        "tweet_content": content,
        "created_at": created_at,
        "reply_to": reply_to,
    }
    return Card(fixed, original, by)


def counts_of(raw: bytes) -> tuple[int, int]:
    """A cached tweet's (likes, retweets)."""
    return _COUNTS.unpack_from(raw)


def counts(likes: int, retweets: int) -> bytes:
    return _COUNTS.pack(likes, retweets)


def _horizon(rows) -> int:
    """Flags are known for ids >= this: older likes/retweets were not loaded."""
    horizon = 0
    for kind in ("l", "r"):
        ids = [row.ident for row in rows if row.kind == kind]
        if len(ids) >= LIKES_LOADED:
            horizon = max(horizon, min(ids))
    return horizon
