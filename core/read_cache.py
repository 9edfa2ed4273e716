"""Read-side caches in Redis: a warm timeline page is one Lua call, no SQL.

A page script (``_PAGE``) merges the timeline keys, filters, and writes the
page's JSON itself from pre-rendered parts, each cached apart because each
changes for its own reasons (ids in key names are 8-byte big-endian):

* ``tw:<id>``   24 bytes (author, original, original's author) + the JSON
  fields that never change (id, author_id, tweet_content, created_at, reply_to).
  Only a delete changes it.
* ``un:<user>`` the author's ``"user_id":"<username>"`` (a rename rewrites it).
* ``tn:<id>`` ``"like_count":n,"retweet_count":m`` (rewritten after each commit
  that changes them, with the values read after that commit).
* ``vs:<user>`` the reader's *social* hash: which followees are pulled (``p``,
  decimal ids) and, per tweet id, whether they liked (1) or retweeted (2) it,
  down to the horizon ``h`` (``LIKES_LOADED`` of each); ``vf:<user>`` whom they
  follow (one field per id). Field names are the 8-byte ids themselves, so the
  page script builds no strings to look them up.
* ``uid:<lower username>`` the user id, for user timelines.

Consistency, as readers fill these from Postgres while writers change Postgres:
readers only ever *add* (``SET NX``), writers act after their commit. A delete
also marks the key spoiled for ``SPOIL_S`` seconds, so a reader that read
Postgres before the delete committed cannot put it back. A social hash is
stored only if the reader's generation (``vg:<user>``, bumped by each of their
follows, likes and retweets) did not move while it was loaded; a global epoch
(bumped when an author crosses the fan-out threshold) retires every list of
pulled authors. Whenever the script lacks anything, it says so and the caller
serves the page the long way (``core.timelines``: Postgres checks every tweet)
and fills the cache on the way out.
"""

from __future__ import annotations

import logging
import struct

import orjson
import redis

from core import db, metrics
from core.thread_script import ThreadScript

log = logging.getLogger(__name__)

SPOIL_S = 30
TWEET_TTL_S = 6 * 3600
COUNT_TTL_S = 3600
NAME_TTL_S = 6 * 3600
SOCIAL_TTL_S = 3600
LIKES_LOADED = 2000  # newest likes (and retweets) per reader kept in the hash
_ID = struct.Struct(">Q")
_NONE = bytes(8)

# KEYS: social hash ('' if anonymous), epoch, timeline key (for 'named': the
#       uid key of the owner's name), follow hash ('' unless home), then
#       optionally the token's denylist keys (core.revocation.Denylist.keys).
# ARGV: prefix, 'home'|'user'|'named', reader (8 bytes), viewer '1'|'0',
#       before (8 bytes or ''), limit, ttl of a home key, free slots reserved.
# Returns {1, items JSON, last id, count, owner ('' unless named)} or {0, why}.
_PAGE = r"""
if #KEYS > 4 then  -- the token's denylist check, deferred to this call
  local d = redis.call('MGET', KEYS[5], KEYS[6], KEYS[7], KEYS[8])
  if not d[1] then return {0, 'deny'} end  -- not loaded: ask the long way
  if d[2] or d[3] or d[4] then return {0, 'revoked'} end
end
local p, home, reader = ARGV[1], ARGV[2] == 'home', ARGV[3]
local viewer, before, limit = ARGV[4] == '1', ARGV[5], tonumber(ARGV[6])
local Z8 = string.rep('\0', 8)
local function less(a, b)  -- 8-byte big-endian ids; Lua numbers are doubles
  local ah, al = struct.unpack('>I4>I4', a)
  local bh, bl = struct.unpack('>I4>I4', b)
  if ah ~= bh then return ah < bh end
  return al < bl
end
local social = {}
if home or viewer then
  social = redis.call('HMGET', KEYS[1], 'e', 'p', 'h')
  if not social[1] then return {0, 'social'} end
  if home and (social[1] ~= (redis.call('GET', KEYS[2]) or '0')
               or redis.call('EXISTS', KEYS[4]) == 0) then
    return {0, 'social'}
  end
end
local tkey, owner = KEYS[3], ''
if ARGV[2] == 'named' then  -- a user timeline by username: KEYS[3] is uid:<name>
  owner = redis.call('GET', KEYS[3])
  if not owner then return {0, 'owner'} end
  tkey = p .. 'utl:' .. owner
end
local keys = {tkey}
if home then
  for a in string.gmatch(social[2], '%d+') do keys[#keys + 1] = p .. 'utl:' .. a end
end
-- a window of each key from the first id < before; merged sources are exact
-- only above the highest floor
local want = limit + 8
local wins, pos, done, floor = {}, {}, {}, Z8
local reach = 16 + tonumber(ARGV[8]) * 16 + want * 16  -- header, slots, window
for k = 1, #keys do
  -- first pages (no cursor) read header, free slots and window in one call
  local got = redis.call('GETRANGE', keys[k], 0, before == '' and reach - 1 or 15)
  if #got < 16 then return {0, 'key'} end
  local f = string.sub(got, 1, 8)
  if f == string.rep('\255', 8) then return {0, 'key'} end
  if less(floor, f) then floor = f end
  local _, free = struct.unpack('>I4>I4', got, 9)
  local start = 16 + free * 16
  if before == '' and start + want * 16 <= reach then
    wins[k] = string.sub(got, start + 1, start + want * 16)
    done[k] = #got < reach
  else
    local n = (redis.call('STRLEN', keys[k]) - start) / 16
    local lo, hi = 0, n
    while before ~= '' and lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local at = start + mid * 16
      if less(redis.call('GETRANGE', keys[k], at, at + 7), before) then
        hi = mid
      else
        lo = mid + 1
      end
    end
    local take = math.min(want, n - lo)
    wins[k] = ''
    if take > 0 then
      wins[k] = redis.call('GETRANGE', keys[k], start + lo * 16,
                           start + (lo + take) * 16 - 1)
    end
    done[k] = lo + take >= n
  end
  pos[k] = 1
end
if home then redis.call('EXPIRE', KEYS[3], ARGV[7]) end
-- k-way merge on cached heads (two 32-bit halves each: exact, no locale)
local hh, hl = {}, {}
local function head(k)
  if pos[k] <= #wins[k] then
    hh[k], hl[k] = struct.unpack('>I4>I4', wins[k], pos[k])
  else
    hh[k] = nil
  end
end
for k = 1, #keys do head(k) end
local fh, fl = struct.unpack('>I4>I4', floor)
local cands, lh, ll, stop = {}, -1, -1, nil
while #cands < want do
  local best, bh, bl = nil, -1, -1
  for k = 1, #keys do
    local h = hh[k]
    if h then
      if h > bh or (h == bh and hl[k] > bl) then best, bh, bl = k, h, hl[k] end
    elseif not done[k] then
      stop = 'window'
    end
  end
  if stop then break end
  if not best then stop = 'end'; break end
  if bh < fh or (bh == fh and bl < fl) then stop = 'floor'; break end
  if bh ~= lh or bl ~= ll then
    cands[#cands + 1] = string.sub(wins[best], pos[best], pos[best] + 15)
    lh, ll = bh, bl
  end
  pos[best] = pos[best] + 16
  head(best)
end
-- still followed? (the entry carries its author)
local shown = {}
if home then
  local authors = {}
  for i = 1, #cands do authors[i] = string.sub(cands[i], 9, 16) end
  local follows = #authors > 0 and redis.call('HMGET', KEYS[4], unpack(authors)) or {}
  for i = 1, #cands do
    if follows[i] or authors[i] == reader then
      shown[#shown + 1] = string.sub(cands[i], 1, 8)
    end
  end
else
  for i = 1, #cands do shown[i] = string.sub(cands[i], 1, 8) end
end
if #shown > limit then
  for i = #shown, limit + 1, -1 do shown[i] = nil end
  stop = 'full'
end
-- a short page is the end only if no source has a floor: else Postgres has more
if #shown < limit and (stop ~= 'end' or floor ~= Z8) then return {0, 'short'} end
if #shown == 0 then return {1, '', '', 0, owner} end
local ptw, pun, ptn = p .. 'tw:', p .. 'un:', p .. 'tn:'
local ckeys = {}
for i = 1, #shown do ckeys[i] = ptw .. shown[i] end
local cards = redis.call('MGET', unpack(ckeys))
local more, fields = {}, {}
for i = 1, #shown do
  local c = cards[i]
  if not c then return {0, 'miss'} end
  local id, o = shown[i], string.sub(c, 9, 16)
  more[#more + 1] = pun .. string.sub(c, 1, 8)
  more[#more + 1] = ptn .. id
  fields[#fields + 1] = id
  if o ~= Z8 then
    more[#more + 1] = ptw .. o
    more[#more + 1] = pun .. string.sub(c, 17, 24)
    more[#more + 1] = ptn .. o
    fields[#fields + 1] = o
  end
end
local vals = redis.call('MGET', unpack(more))
local flags = {}
if viewer then flags = redis.call('HMGET', KEYS[1], unpack(fields)) end
local hz = social[3] or Z8
local zh, zl = struct.unpack('>I4>I4', hz)
-- one buffer, one concat: no intermediate strings
local out, n = {}, 0
local function put(s) n = n + 1; out[n] = s end
-- a viewer's flags per tweet: 1 liked, 2 retweeted, 3 both
local FLAGS = {
  ['0'] = ',"liked":false,"retweeted":false',
  ['1'] = ',"liked":true,"retweeted":false',
  ['2'] = ',"liked":false,"retweeted":true',
  ['3'] = ',"liked":true,"retweeted":true',
}
local function render(card, id, j, fj)
  if not (vals[j] and vals[j + 1]) then return false end
  put('{'); put(string.sub(card, 25)); put(','); put(vals[j]); put(',')
  put(vals[j + 1])
  if viewer then
    local ih, il = struct.unpack('>I4>I4', id)
    if ih < zh or (ih == zh and il < zl) then return false end
    put(FLAGS[flags[fj] or '0'])
  end
  return true
end
local j, fj = 1, 1
for i = 1, #shown do
  local c = cards[i]
  local o = string.sub(c, 9, 16)
  if i > 1 then put(',') end
  if not render(c, shown[i], j, fj) then return {0, 'miss'} end
  if o == Z8 then
    put(',"retweet_of":null}')
    j, fj = j + 2, fj + 1
  else
    put(',"retweet_of":')
    local oc = vals[j + 2]
    if not (oc and render(oc, o, j + 3, fj + 1)) then return {0, 'miss'} end
    put(',"retweet_of":null}}')
    j, fj = j + 5, fj + 2
  end
end
return {1, table.concat(out), shown[#shown], #shown, owner}
"""

# Readers add what is missing, never over a spoiled key. ARGV: key, value, ttl...
_FILL = r"""
for i = 1, #ARGV, 3 do
  if redis.call('EXISTS', ARGV[i] .. '~') == 0 then
    redis.call('SET', ARGV[i], ARGV[i + 1], 'EX', ARGV[i + 2], 'NX')
  end
end
"""

# Store a loaded social and follow hash unless the generation moved meanwhile.
# KEYS: social, generation, follows. ARGV: generation read before loading, ttl,
# number of social field/value arguments, those, then the followed ids.
_STORE_SOCIAL = r"""
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
local split = 3 + tonumber(ARGV[3])
for i = 4, split, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, split)))
end
redis.call('HSET', KEYS[3], '', 1)  -- exists even for a user who follows no one
for i = split + 1, #ARGV, 500 do
  local kv = {}
  for k = i, math.min(i + 499, #ARGV) do kv[#kv + 1] = ARGV[k]; kv[#kv + 1] = 1 end
  redis.call('HSET', KEYS[3], unpack(kv))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
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


REVOKED = object()  # what ``ReadCache.page`` answers for a revoked token


def b8(ident: int) -> bytes:
    return _ID.pack(ident)


class CachedPage:
    """A page rendered by Redis: the items' JSON, their number, the last id."""

    __slots__ = ("items", "count", "last_id", "owner")

    def __init__(self, items: bytes, count: int, last_id: int | None, owner: int):
        self.items, self.count, self.last_id = items, count, last_id
        self.owner = owner


class ReadCache:
    def __init__(self, client: redis.Redis, prefix: str, threshold: int):
        self.redis = client
        self.prefix = prefix
        self._p = prefix.encode()
        self.threshold = threshold
        self._page = ThreadScript(client, _PAGE)  # the hot call
        self._fill = ThreadScript(client, _FILL)
        self._store_social = client.register_script(_STORE_SOCIAL)

    def key(self, kind: str, ident: int) -> bytes:
        return self._p + kind.encode() + b":" + b8(ident)

    @property
    def epoch_key(self) -> str:
        return f"{self.prefix}epoch"

    def name_key(self, username: str) -> str:
        return f"{self.prefix}uid:{username.lower()}"

    # ------------------------------------------------------------------ pages
    def page(
        self,
        mode: str,
        timeline_key: str,
        reader_id: int,
        viewer_id: int | None,
        before: int | None,
        limit: int,
        home_ttl_s: int,
        slack: int,
        deny_keys: list[str] | None = None,
    ) -> CachedPage | object | None:
        """The page from Redis alone, or None: then ask ``core.timelines``.

        With ``deny_keys`` the token's revocation is checked in the same call:
        REVOKED if it is revoked (None if that could not be told here)."""
        social_id = reader_id if mode == "home" else viewer_id
        for _ in range(2):
            answer = self._page(
                keys=[
                    self.key("vs", social_id) if social_id is not None else b"",
                    self.epoch_key,
                    timeline_key,
                    self.key("vf", reader_id) if mode == "home" else b"",
                    *(deny_keys or ()),
                ],
                args=[
                    self._p,
                    mode,
                    b8(reader_id),
                    "1" if viewer_id is not None else "0",
                    b8(before) if before is not None else b"",
                    limit,
                    home_ttl_s,
                    slack,
                ],
            )
            if answer[0] == 1:
                metrics.DEFERRED.inc(metrics.CACHE_PAGES)
                items, last, count, owner = answer[1:5]
                return CachedPage(
                    items,
                    count,
                    _ID.unpack(last)[0] if last else None,
                    int(owner) if owner else reader_id,
                )
            if answer[1] == b"revoked":
                return REVOKED
            if answer[1] != b"social" or not self.load_social(social_id):
                metrics.DEFERRED.inc(metrics.CACHE_MISSES, (answer[1].decode(),))
                return None
        return None

    def fill(self, tweets) -> None:
        """Cache what a Postgres-hydrated page showed (see ``core.hydrate``)."""
        args = self.fill_args(tweets)
        if args:
            self._quietly(lambda: self._fill(keys=[], args=args), "fill")

    def fill_args(self, tweets) -> list:
        """ARGV of the fill script (``fill_script``) for ``tweets``."""
        args: list = []
        for tweet in tweets:
            for t in (tweet, tweet["retweet_of"]):
                if t is None:
                    continue
                tweet_id = int(t["id"])
                args += [self.key("tw", tweet_id), _card(t), TWEET_TTL_S]
                args += [
                    self.key("un", int(t["author_id"])),
                    _name(t["user_id"]),
                    NAME_TTL_S,
                ]
                args += [
                    self.key("tn", tweet_id),
                    _counts(t["like_count"], t["retweet_count"]),
                    COUNT_TTL_S,
                ]
        return args

    @property
    def fill_script(self) -> ThreadScript:
        return self._fill

    def user_id(self, username: str) -> int | None:
        try:
            value = self.redis.get(self.name_key(username))
        except redis.RedisError:
            return None
        return int(value) if value is not None else None

    def remember_user_id(self, username: str, user_id: int) -> None:
        self._quietly(
            lambda: self._fill(
                keys=[], args=[self.name_key(username), user_id, NAME_TTL_S]
            ),
            "fill",
        )

    # ----------------------------------------------------------------- social
    def load_social(self, user_id: int) -> bool:
        """Load a reader's social hash from Postgres; False if it moved meanwhile."""
        generation, epoch = self.redis.mget(self.key("vg", user_id), self.epoch_key)
        rows = db.fetchall(
            _SOCIAL_SQL,
            {"user": user_id, "threshold": self.threshold, "n": LIKES_LOADED},
        )
        flags: dict[int, int] = {}
        follows, pulled = [], []
        for kind, ident, big in rows:
            if kind == "f":
                follows.append(b8(ident))
                if big:
                    pulled.append(str(ident))
            else:  # 1 liked, 2 retweeted (the page script's FLAGS)
                flags[ident] = flags.get(ident, 0) | (1 if kind == "l" else 2)
        fields: list = ["e", epoch or b"0", "h", b8(_horizon(rows))]
        fields += ["p", ",".join(pulled)]
        for ident, bits in flags.items():
            fields += [b8(ident), bits]
        metrics.CACHE_SOCIAL_LOADS.inc()
        return bool(
            self._store_social(
                keys=[
                    self.key("vs", user_id),
                    self.key("vg", user_id),
                    self.key("vf", user_id),
                ],
                args=[generation or b"0", SOCIAL_TTL_S, len(fields), *fields, *follows],
            )
        )

    # ------------------------------------------------------------ invalidation
    def social_changed(self, *user_ids: int) -> None:
        """A reader followed, unfollowed, liked or retweeted: reload their hash."""
        pipe = self.redis.pipeline(transaction=True)
        for user_id in user_ids:
            pipe.incr(self.key("vg", user_id))
            pipe.expire(self.key("vg", user_id), 2 * SOCIAL_TTL_S)
            pipe.delete(self.key("vs", user_id), self.key("vf", user_id))
        self._quietly(pipe.execute, "social")

    def threshold_crossed(self) -> None:
        """Who is pulled changed for some readers: retire every pulled list."""
        self._quietly(lambda: self.redis.incr(self.epoch_key), "epoch")

    def counts_changed(self, rows) -> None:
        """``(tweet id, likes, retweets)`` rows read after the commit that
        changed them, written in one round trip (readers only add)."""
        pipe = self.redis.pipeline(transaction=False)
        for tweet_id, likes, retweets in rows:
            pipe.set(self.key("tn", tweet_id), _counts(likes, retweets), ex=COUNT_TTL_S)
        self._quietly(pipe.execute, "counts")

    def renamed(self, user_id: int, old: str, new: str) -> None:
        self._spoil([self.name_key(old)])
        self._quietly(
            lambda: self.redis.set(self.key("un", user_id), _name(new), ex=NAME_TTL_S),
            "name",
        )

    def tweets_deleted(self, tweet_ids) -> None:
        self._spoil([self.key("tw", t) for t in tweet_ids])

    def user_deleted(self, user_id: int, username: str) -> None:
        """Their tweets now miss their author, so Postgres is asked (and says gone)."""
        self._spoil([self.key("un", user_id), self.name_key(username)])

    def _spoil(self, keys: list) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.delete(key)
            pipe.set(key + (b"~" if isinstance(key, bytes) else "~"), 1, ex=SPOIL_S)
        self._quietly(pipe.execute, "spoil")

    @staticmethod
    def _quietly(call, what: str) -> None:
        try:
            call()
        except redis.RedisError as ex:
            # Entries expire on their own; until then the long path (Postgres)
            # serves whatever the cache lacks.
            log.warning("read cache %s not updated: %s", what, ex)


def _name(username: str) -> bytes:
    return b'"user_id":' + orjson.dumps(username)


def _counts(likes: int, retweets: int) -> bytes:
    return b'"like_count":%d,"retweet_count":%d' % (likes, retweets)


def _card(tweet: dict) -> bytes:
    original = tweet["retweet_of"]
    head = b8(int(tweet["author_id"]))
    if original:
        head += b8(int(original["id"])) + b8(int(original["author_id"]))
    else:
        head += _NONE + _NONE
    fixed = orjson.dumps(
        {
            "id": tweet["id"],
            "author_id": tweet["author_id"],
            "tweet_content": tweet["tweet_content"],
            "created_at": tweet["created_at"],
            "reply_to": tweet["reply_to"],
        }
    )
    return head + fixed[1:-1]


def _horizon(rows) -> int:
    """Flags are known for ids >= this: older likes/retweets were not loaded."""
    horizon = 0
    for kind in ("l", "r"):
        ids = [ident for k, ident, _ in rows if k == kind]
        if len(ids) >= LIKES_LOADED:
            horizon = max(horizon, min(ids))
    return horizon
