"""Read-side caches in Redis, so that a timeline page needs no SQL at all.

What a page shows besides the timeline ids, each cached apart because each
changes for its own reasons:

* ``tw:<id>``  the tweet's immutable part: ``author|original|original author|``
  then the JSON of content, created_at and reply_to. Only a delete changes it.
* ``un:<user>`` the author's username (a rename rewrites it after commit).
* ``tl:<id>``, ``tr:<id>`` like and retweet counts (rewritten after each commit
  that changes them, with the values read after that commit).
* ``vs:<user>`` the *social* hash of a reader: who they follow (``f<id>``),
  which followees are pulled (``p``), what they liked (``l<id>``) and retweeted
  (``r<id>``), down to a horizon ``h`` of tweet ids (``LIKES_LOADED`` each).

Consistency, since readers fill the caches from Postgres while writers change
Postgres: readers only ever *add* missing values (``SET NX``); writers act after
their commit. A delete also marks the key *spoiled* for ``SPOIL_S`` seconds, so a
reader that read Postgres before the delete committed cannot put the tweet
back. A social hash is stored only if the reader's generation counter
(``vg:<user>``, bumped by each of the reader's follows, likes and retweets) did
not move while it was loaded; a global epoch (bumped when an author crosses the
fan-out threshold) retires every stored list of pulled authors. Whatever is
missing or undecidable is hydrated from Postgres (``core.hydrate``), which
remains the truth, and cached on the way out.
"""

from __future__ import annotations

import logging

import orjson
import redis

from core import db, hydrate, metrics

log = logging.getLogger(__name__)

SPOIL_S = 30
TWEET_TTL_S = 6 * 3600
COUNT_TTL_S = 3600
NAME_TTL_S = 6 * 3600
SOCIAL_TTL_S = 3600
LIKES_LOADED = 2000  # newest likes (and retweets) per reader kept in the hash

# RT1: the reader's social hash (if current) and every timeline key a home
# page merges, in one round trip. KEYS: home, social, epoch. ARGV: prefix, ttl.
_SOURCES = r"""
local s = redis.call('HMGET', KEYS[2], 'e', 'p')
local epoch = redis.call('GET', KEYS[3]) or '0'
if (not s[1]) or s[1] ~= epoch then return {0} end
local out = {1, s[2], redis.call('GET', KEYS[1])}
if out[3] then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
for a in string.gmatch(s[2], '%d+') do
  out[#out + 1] = redis.call('GET', ARGV[1] .. 'utl:' .. a)
end
return out
"""

# RT2: everything needed to render a batch of tweets. KEYS: social hash.
# ARGV: prefix, then the tweet ids. The second MGET's keys follow from the
# cards; Python rebuilds the same list (``_wanted``) to read the answer.
_RENDER = r"""
local p, n = ARGV[1], #ARGV - 1
local keys = {}
for i = 1, n do keys[i] = p .. 'tw:' .. ARGV[i + 1] end
local cards = redis.call('MGET', unpack(keys))
local more, fields = {}, {'e', 'h'}
for i = 1, n do
  local c = cards[i]
  if c then
    local id = ARGV[i + 1]
    local a, o, oa = string.match(c, '^(%d+)|(%d+)|(%d+)|')
    more[#more + 1] = p .. 'un:' .. a
    more[#more + 1] = p .. 'tl:' .. id
    more[#more + 1] = p .. 'tr:' .. id
    fields[#fields + 1] = 'f' .. a
    fields[#fields + 1] = 'l' .. id
    fields[#fields + 1] = 'r' .. id
    if o ~= '0' then
      more[#more + 1] = p .. 'tw:' .. o
      more[#more + 1] = p .. 'un:' .. oa
      more[#more + 1] = p .. 'tl:' .. o
      more[#more + 1] = p .. 'tr:' .. o
      fields[#fields + 1] = 'l' .. o
      fields[#fields + 1] = 'r' .. o
    end
  end
end
local vals, flags = {}, {}
if #more > 0 then vals = redis.call('MGET', unpack(more)) end
if KEYS[1] ~= '' then flags = redis.call('HMGET', KEYS[1], unpack(fields)) end
return {cards, vals, flags}
"""

# Readers add what is missing, never over a spoiled key. ARGV: key, value, ttl...
_FILL = r"""
for i = 1, #ARGV, 3 do
  if redis.call('EXISTS', ARGV[i] .. '~') == 0 then
    redis.call('SET', ARGV[i], ARGV[i + 1], 'EX', ARGV[i + 2], 'NX')
  end
end
"""

# Store a loaded social hash unless the generation moved meanwhile.
# KEYS: social, generation. ARGV: generation read before loading, ttl, fields...
_STORE_SOCIAL = r"""
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for i = 3, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_SOCIAL_SQL = (
    "SELECT 'f', f.followee_id, u.follower_count >= %(threshold)s"
    " FROM follows f JOIN users u ON u.id = f.followee_id"
    " WHERE f.follower_id = %(user)s"
    " UNION ALL (SELECT 'l', tweet_id, false FROM likes WHERE user_id = %(user)s"
    "  ORDER BY tweet_id DESC LIMIT %(n)s)"
    " UNION ALL (SELECT 'r', retweet_of_id, false FROM tweets"
    "  WHERE author_id = %(user)s AND retweet_of_id IS NOT NULL"
    "  ORDER BY retweet_of_id DESC LIMIT %(n)s)"
)


class Social:
    """A reader's social hash as answered by Redis (see module doc)."""

    __slots__ = ("exists", "horizon")

    def __init__(self, values: list):
        self.exists = bool(values) and values[0] is not None
        self.horizon = int(values[1]) if self.exists and values[1] else 0


class ReadCache:
    def __init__(self, client: redis.Redis, prefix: str, threshold: int):
        self.redis = client
        self.prefix = prefix
        self.threshold = threshold
        self._sources = client.register_script(_SOURCES)
        self._render = client.register_script(_RENDER)
        self._fill = client.register_script(_FILL)
        self._store_social = client.register_script(_STORE_SOCIAL)

    def key(self, kind: str, ident) -> str:
        return f"{self.prefix}{kind}:{ident}"

    # ------------------------------------------------------------ home sources
    def home_sources(self, user_id: int, home_key: str, ttl_s: int):
        """(pulled author ids, [home raw, pulled raws...]) in one round trip.

        Loads the reader's social hash first when it is missing or stale;
        None if it could not be stored (a concurrent change: ask Postgres).
        """
        for _ in range(2):
            answer = self._sources(
                keys=[home_key, self.key("vs", user_id), self.key("epoch", 0)],
                args=[self.prefix, ttl_s],
            )
            if answer[0] == 1:
                pulled = [int(a) for a in answer[1].split(b",") if a]
                return pulled, answer[2:]
            if not self.load_social(user_id):
                return None
        return None

    # ----------------------------------------------------------------- render
    def render(
        self, tweet_ids: list[int], viewer_id: int | None, reader_id: int | None
    ) -> dict[int, dict]:
        """Like ``hydrate.load``, from Redis where it can; Postgres for the rest."""
        social_id = viewer_id if viewer_id is not None else reader_id
        found, missing, social = self._from_redis(
            tweet_ids, viewer_id, reader_id, social_id
        )
        # first read of this user in a while: load, then answer from Redis
        if social_id is not None and not social.exists and self.load_social(social_id):
            found, missing, social = self._from_redis(
                tweet_ids, viewer_id, reader_id, social_id
            )
        if missing:
            metrics.CACHE_MISSES.inc(len(missing))
            found.update(self._from_postgres(missing, viewer_id, reader_id))
        return found

    def _from_redis(self, tweet_ids, viewer_id, reader_id, social_id):
        social_key = self.key("vs", social_id) if social_id is not None else ""
        cards, vals, flags = self._render(
            keys=[social_key], args=[self.prefix, *tweet_ids]
        )
        social = Social(flags)
        found: dict[int, dict] = {}
        missing: list[int] = []
        at_val, at_flag = 0, 2
        for tweet_id, card in zip(tweet_ids, cards, strict=True):
            if card is None:
                missing.append(tweet_id)
                continue
            author, original, original_author, body = card.split(b"|", 3)
            wide = original != b"0"
            nv, nf = (7, 5) if wide else (3, 3)
            tweet = _assemble(
                tweet_id,
                author,
                body,
                vals[at_val : at_val + nv],
                flags[at_flag : at_flag + nf] if flags else None,
                original,
                original_author,
                viewer_id is not None,
                reader_id,
                social,
            )
            at_val += nv
            at_flag += nf
            if tweet is _MISS:
                missing.append(tweet_id)
            elif tweet is not _HIDDEN:
                found[tweet_id] = tweet
        return found, missing, social

    def _from_postgres(self, tweet_ids, viewer_id, reader_id) -> dict[int, dict]:
        tweets = hydrate.load(tweet_ids, viewer_id, reader_id)
        try:
            self._fill(args=_fill_args(self, tweets.values()))
        except redis.RedisError as ex:
            log.warning("read cache not filled: %s", ex)
        return tweets

    # ----------------------------------------------------------------- social
    def load_social(self, user_id: int) -> bool:
        """Load a reader's social hash from Postgres; False if it moved meanwhile."""
        generation, epoch = self.redis.mget(
            self.key("vg", user_id), self.key("epoch", 0)
        )
        rows = db.fetchall(
            _SOCIAL_SQL,
            {"user": user_id, "threshold": self.threshold, "n": LIKES_LOADED},
        )
        fields: list = ["e", epoch or b"0", "h", _horizon(rows)]
        pulled = []
        for kind, ident, big in rows:
            fields += [f"{kind}{ident}", 1]
            if big:
                pulled.append(str(ident))
        fields += ["p", ",".join(pulled)]
        metrics.CACHE_SOCIAL_LOADS.inc()
        return bool(
            self._store_social(
                keys=[self.key("vs", user_id), self.key("vg", user_id)],
                args=[generation or b"0", SOCIAL_TTL_S, *fields],
            )
        )

    # ------------------------------------------------------------ invalidation
    def social_changed(self, *user_ids: int) -> None:
        """A reader followed, unfollowed, liked or retweeted: reload their hash."""
        pipe = self.redis.pipeline(transaction=True)
        for user_id in user_ids:
            pipe.incr(self.key("vg", user_id))
            pipe.expire(self.key("vg", user_id), 2 * SOCIAL_TTL_S)
            pipe.delete(self.key("vs", user_id))
        self._quietly(pipe.execute, "social")

    def threshold_crossed(self) -> None:
        """Who is pulled changed for some readers: retire every pulled list."""
        self._quietly(lambda: self.redis.incr(self.key("epoch", 0)), "epoch")

    def counts_changed(self, tweet_id: int, likes: int, retweets: int) -> None:
        """Written after the commit that changed them (readers only add)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.key("tl", tweet_id), likes, ex=COUNT_TTL_S)
        pipe.set(self.key("tr", tweet_id), retweets, ex=COUNT_TTL_S)
        self._quietly(pipe.execute, "counts")

    def renamed(self, user_id: int, username: str) -> None:
        self._quietly(
            lambda: self.redis.set(self.key("un", user_id), username, ex=NAME_TTL_S),
            "name",
        )

    def tweets_deleted(self, tweet_ids) -> None:
        self._spoil([self.key("tw", t) for t in tweet_ids])

    def user_deleted(self, user_id: int) -> None:
        """Every tweet of theirs now misses its author: Postgres says it is gone."""
        self._spoil([self.key("un", user_id)])

    def _spoil(self, keys: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.delete(key)
            pipe.set(key + "~", 1, ex=SPOIL_S)
        self._quietly(pipe.execute, "spoil")

    @staticmethod
    def _quietly(call, what: str) -> None:
        try:
            call()
        except redis.RedisError as ex:
            # Entries expire on their own; until then Postgres-checked paths
            # (tweet pages, likes) stay right.
            log.warning("read cache %s not updated: %s", what, ex)


_MISS, _HIDDEN = object(), object()


def _assemble(
    tweet_id,
    author,
    body,
    vals,
    flags,
    original,
    original_author,
    viewer: bool,
    reader_id,
    social,
):
    if reader_id is not None and int(author) != reader_id:
        if not social.exists:
            return _MISS
        if flags[0] is None:
            return _HIDDEN  # no longer followed
    if viewer and (not social.exists or tweet_id < social.horizon):
        return _MISS
    name, likes, retweets = vals[0], vals[1], vals[2]
    if name is None or likes is None or retweets is None:
        return _MISS
    tweet = _tweet(tweet_id, author, name, body, likes, retweets)
    if viewer:
        tweet["liked"] = flags[1] is not None
        tweet["retweeted"] = flags[2] is not None
    if original != b"0":
        ocard, oname, olikes, oretweets = vals[3], vals[4], vals[5], vals[6]
        if ocard is None or oname is None or olikes is None or oretweets is None:
            return _MISS
        orig_id = int(original)
        if viewer and orig_id < social.horizon:
            return _MISS
        inner = _tweet(
            orig_id, original_author, oname, ocard.split(b"|", 3)[3], olikes, oretweets
        )
        if viewer:
            inner["liked"] = flags[3] is not None
            inner["retweeted"] = flags[4] is not None
        tweet["retweet_of"] = inner
    return tweet


def _tweet(tweet_id, author, name, body, likes, retweets) -> dict:
    tweet = orjson.loads(body)
    tweet["id"] = str(tweet_id)
    tweet["user_id"] = name.decode()
    tweet["author_id"] = author.decode()
    tweet["like_count"] = int(likes)
    tweet["retweet_count"] = int(retweets)
    tweet["retweet_of"] = None
    return tweet


def _card(tweet: dict) -> bytes:
    original = tweet["retweet_of"]
    head = (
        f"{tweet['author_id']}|{original['id']}|{original['author_id']}|"
        if original
        else f"{tweet['author_id']}|0|0|"
    )
    return head.encode() + orjson.dumps(
        {
            "tweet_content": tweet["tweet_content"],
            "created_at": tweet["created_at"],
            "reply_to": tweet["reply_to"],
        }
    )


def _fill_args(cache: ReadCache, tweets) -> list:
    args: list = []
    for tweet in tweets:
        for t in (tweet, tweet["retweet_of"]):
            if t is None:
                continue
            args += [cache.key("tw", t["id"]), _card(t), TWEET_TTL_S]
            args += [cache.key("un", t["author_id"]), t["user_id"], NAME_TTL_S]
            args += [cache.key("tl", t["id"]), t["like_count"], COUNT_TTL_S]
            args += [cache.key("tr", t["id"]), t["retweet_count"], COUNT_TTL_S]
    return args


def _horizon(rows) -> int:
    """Flags are known for ids >= this: older likes/retweets were not loaded."""
    horizon = 0
    for kind in ("l", "r"):
        ids = [ident for k, ident, _ in rows if k == kind]
        if len(ids) >= LIKES_LOADED:
            horizon = max(horizon, min(ids))
    return horizon
