"""Timelines in Redis as packed strings: compact, exactly ordered, idempotent.

A key is a 16-byte header (the *floor*, then the number F of free slots), F free
16-byte slots, then 16-byte entries ``tweet id | author id`` (unsigned
big-endian), newest first, no duplicates, authoritative for every id >= floor
(older tweets come from Postgres). A floor of 2^64-1 marks a placeholder set
before a rebuild, which catches the pushes that race with it. Every edit is a
Lua script on one key. Why: docs/design.md#consistency-the-guarantees-of-timelinesmd
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass

from core.keys import Keys
from core.redis_client import Script, execute

HEADER = 16
ENTRY = 16
PLACEHOLDER_FLOOR = (1 << 64) - 1
_PACK = struct.Struct(">QQ")
_FLOOR = struct.Struct(">Q")
_HEAD = struct.Struct(">QQ")  # floor, free slots

# Shared Lua: parse, merge and write back one key. Ids are compared as two
# 32-bit halves because Lua numbers are doubles (exact only up to 2^53) and
# Lua string ordering follows the locale.
_LUA_LIB = r"""
local function less(a, pa, b, pb)
  local ah, al = struct.unpack('>I4>I4', a, pa)
  local bh, bl = struct.unpack('>I4>I4', b, pb)
  if ah ~= bh then return ah < bh end
  return al < bl
end
local function first_entry(cur)  -- 1-based position of the newest entry
  local _, free = struct.unpack('>I4>I4', cur, 9)
  return 17 + free * 16
end
-- free slots a rewrite reserves: slack, but never more than cap + slack
-- entries and slots in all. So a key never outgrows cap + slack entries, and
-- a free slot always means the next entry may be written in place.
local function free_after(n, cap, slack)
  return math.max(0, math.min(slack, cap + slack - n))
end
local function write(key, floor, parts, n, cap, limit, ttl, slack)
  if n > limit then
    n = cap
    floor = string.sub(parts[n], 1, 8)
  end
  local free = free_after(n, cap, slack)
  local value = floor .. struct.pack('>I4>I4', 0, free)
    .. string.rep('\0', free * 16) .. table.concat(parts, '', 1, n)
  if ttl > 0 then
    redis.call('SET', key, value, 'EX', ttl)
  else
    redis.call('SET', key, value, 'KEEPTTL')
  end
end
-- merge sorted-desc entry blob `new` into key; returns 1 if the key existed
local function merge(key, new, cap, limit, ttl, newfloor, slack)
  local cur = redis.call('GET', key)
  if not cur then
    if newfloor == nil then return 0 end
    cur = newfloor .. string.rep('\0', 8)
  end
  local floor = newfloor or string.sub(cur, 1, 8)
  -- a placeholder keeps every push until the rebuild sets the real floor
  local keepall = (floor == string.rep('\255', 8))
  local parts, n = {}, 0
  local i, j = first_entry(cur), 1
  local ci, nj = #cur, #new
  while i <= ci or j <= nj do
    local take
    if i > ci then take = 'n'
    elseif j > nj then take = 'c'
    else
      local a = string.sub(cur, i, i + 7)
      local b = string.sub(new, j, j + 7)
      if a == b then take = 'b'
      elseif less(cur, i, new, j) then take = 'n'
      else take = 'c' end
    end
    local e
    if take == 'n' then e = string.sub(new, j, j + 15); j = j + 16
    elseif take == 'c' then e = string.sub(cur, i, i + 15); i = i + 16
    else e = string.sub(cur, i, i + 15); i = i + 16; j = j + 16 end
    -- entries below the floor are Postgres's business
    if keepall or not less(e, 1, floor, 1) then
      n = n + 1
      parts[n] = e
    end
  end
  write(key, floor, parts, n, cap, limit, ttl, slack)
  return 1
end
"""

# The fan-out's hot loop: the entries of ARGV[1] into every key. One GETRANGE
# reads the header, the free slots and the newest WINDOW entries; an entry's
# place is found there (nearly always first: a new tweet is the newest). With a
# free slot, one SETRANGE from offset 0 writes the new header, the remaining
# free slots, the newer entries moved up one slot and the entry -- the rest of
# the key is untouched. Without one, the key is rewritten from its kept tail
# (string slices, no per-entry loop), trimmed to cap past cap + slack. A place
# beyond the window is looked for in 64 more entries, then in the whole key
# (one GET); placeholders behind their newest entry take the general merge.
# Cheapest in place at the head, dearer the further down, a rewrite once
# every slack + 1 pushes (bench/README.md, "Fan-out after the two-call push").
#
# Up to ``slack`` entries at once (a burst by one author) go in as one write
# when they are all newer than the newest: in the free slots, or a rewrite
# trimmed once (as a merge would); otherwise one by one, oldest first, as
# single pushes would. More (a follow's backfill) are merged, trimmed once.
PUSH_SOURCE = (
    _LUA_LIB
    + r"""
local cap, limit, slack = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local unpack, call = struct.unpack, redis.call
local blob = ARGV[1]
local k = #blob / 16
local written = 0
if k == 0 then
  for i = 1, #KEYS do written = written + call('EXISTS', KEYS[i]) end
  return written
end
if k > slack then
  for i = 1, #KEYS do
    written = written + merge(KEYS[i], blob, cap, limit, 0, nil, slack)
  end
  return written
end
local WINDOW = 8
local want = 16 + (slack + WINDOW) * 16   -- bytes read per key
local deep = want + 64 * 16
local placeholder = string.rep('\255', 8)
-- a header's free-slot count and the free slots themselves, built on demand:
-- a call writes one key, so it needs one or two of them
local head, zeros = {}, {}
local function hd(f)
  local v = head[f]
  if not v then v = struct.pack('>I4>I4', 0, f); head[f] = v end
  return v
end
local function zs(f)
  local v = zeros[f]
  if not v then v = string.rep('\0', f * 16); zeros[f] = v end
  return v
end
-- the entries, oldest first, each with what its comparisons and writes need
local entries = {}
for j = #blob - 15, 1, -16 do
  local e = string.sub(blob, j, j + 15)
  local h, l = unpack('>I4>I4', e)
  entries[#entries + 1] = {e = e, id = string.sub(e, 1, 8), h = h, l = l, fill = {}}
end
local function older(s, p, E)  -- is the id at s[p] below E's?
  local h, l = unpack('>I4>I4', s, p)
  if h ~= E.h then return h < E.h end
  return l < E.l
end
-- the common write, from offset 8: header's free count, the free slots left,
-- then the new entries in the last ones (the same bytes for every key)
local function fill(E, free, n, bytes)
  local cached = E.fill[free]
  if not cached then
    cached = hd(free - n) .. zs(free - n) .. bytes
    E.fill[free] = cached
  end
  return cached
end
-- No free slot left for `new` (bytes of entries) at 1-based position p of
-- `got` (which holds the key from its start to at least p - 1): rewrite the
-- key, trimmed to cap past cap + slack. Lua hashes every byte of every string
-- it makes, so only the kept tail is read, and it is the only copy.
local function rewrite(key, got, at, p, new)
  local size = call('STRLEN', key)
  local count = (size - at + 1 + #new) / 16
  local body = string.sub(got, at, p - 1) .. new  -- the newest, up to p
  local keep = count - #body / 16  -- old entries after them, kept
  local floor = string.sub(got, 1, 8)
  local trim = count > limit
  if trim then
    count, keep = cap, cap - #body / 16
    if keep < 1 then  -- a tiny cap
      body, keep = string.sub(body, 1, cap * 16), 0
      floor = string.sub(body, -16, -9)
    end
  end
  local tail = ''
  if keep > 0 then
    tail = call('GETRANGE', key, p - 1, p + keep * 16 - 2)
    if trim then floor = string.sub(tail, -16, -9) end
  end
  local f = free_after(count, cap, slack)
  local front = floor .. hd(f) .. zs(f) .. body
  if #front + #tail == size then
    -- a trim that frees as many slots as it drops: same length
    call('SETRANGE', key, 0, front)
    call('SETRANGE', key, #front, tail)
  else
    call('SET', key, front .. tail, 'KEEPTTL')
  end
  return true
end
local function insert(key, E, got)
  local e, eid, want = E.e, E.id, want
  local n = #got
  local _, free = unpack('>I4>I4', got, 9)
  local at = 17 + free * 16  -- 1-based position of the newest entry
  if free > 0 and free <= slack and at + 15 <= n and older(got, at, E) then
    -- newer than the newest, which is at or above the floor (a placeholder
    -- keeps everything anyway): the fan-out's case
    call('SETRANGE', key, 8, fill(E, free, 1, e))
    return
  end
  local floor = string.sub(got, 1, 8)
  if floor == placeholder or free > slack then
    merge(key, e, cap, limit, 0, nil, slack)
    return
  end
  if floor ~= eid and not older(got, 1, E) then return end  -- below the floor
  -- find its place among the newest entries read (all of them, if need be)
  local p = at
  while true do
    while p + 15 <= n do
      if string.sub(got, p, p + 7) == eid then return end  -- already there
      if older(got, p, E) then break end
      p = p + 16
    end
    if p + 15 <= n or n < want then break end
    -- its place is past the window: 64 more entries (a burst delivered out
    -- of order), then the whole key
    if want < deep then
      want = deep
      got = call('GETRANGE', key, 0, want - 1)
    else
      got, want = call('GET', key), math.huge
    end
    n = #got
  end
  if free > 0 then
    -- move the newer entries up one slot, the entry below them
    call('SETRANGE', key, 0, floor .. hd(free - 1) .. zs(free - 1)
      .. string.sub(got, at, p - 1) .. e)
  else
    rewrite(key, got, at, p, e)
  end
end
local oldest = entries[1]
for i = 1, #KEYS do
  local key = KEYS[i]
  local got = call('GETRANGE', key, 0, want - 1)
  if #got >= 16 then
    written = written + 1
    local _, free = unpack('>I4>I4', got, 9)
    local at = 17 + free * 16
    local newer = k > 1 and free <= slack and at + 15 <= #got
      and older(got, at, oldest)
    if newer and free >= k then
      call('SETRANGE', key, 8, fill(oldest, free, k, blob))  -- all in one
    elseif newer then
      rewrite(key, got, at, at, blob)  -- trimmed once, as a merge would
    else
      insert(key, oldest, got)
      for j = 2, k do
        insert(key, entries[j], call('GETRANGE', key, 0, want - 1))
      end
    end
  end
end
return written
"""
)

_REBUILD = (
    _LUA_LIB
    + r"""
return merge(KEYS[1], ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[3]),
             tonumber(ARGV[4]), ARGV[2], tonumber(ARGV[5]))
"""
)

# ARGV[1]: 'id' or 'author'; ARGV[2]: blob of 8-byte values to drop.
_REMOVE = r"""
local drop = {}
for p = 1, #ARGV[2], 8 do drop[string.sub(ARGV[2], p, p + 7)] = true end
local offset = (ARGV[1] == 'author') and 8 or 0
local changed = 0
for k = 1, #KEYS do
  local cur = redis.call('GET', KEYS[k])
  if cur then
    local parts, n, removed = {}, 0, 0
    local _, free = struct.unpack('>I4>I4', cur, 9)
    local start = 17 + free * 16
    for i = start, #cur, 16 do
      if drop[string.sub(cur, i + offset, i + offset + 7)] then
        removed = removed + 1
      else
        n = n + 1
        parts[n] = string.sub(cur, i, i + 15)
      end
    end
    if removed > 0 then
      local kept = string.sub(cur, 1, start - 1) .. table.concat(parts)
      redis.call('SET', KEYS[k], kept, 'KEEPTTL')
      changed = changed + 1
    end
  end
end
return changed
"""


@dataclass(frozen=True)
class Timeline:
    """A decoded timeline key: authoritative for ids >= ``floor``."""

    floor: int
    raw: bytes
    start: int = HEADER  # byte offset of the newest entry (after the free slots)

    def __len__(self) -> int:
        return (len(self.raw) - self.start) // ENTRY

    def entry(self, index: int) -> tuple[int, int]:
        return _PACK.unpack_from(self.raw, self.start + index * ENTRY)

    def ids_below(self, before: int | None) -> int:
        """Index of the first entry with id < ``before`` (entries are newest first)."""
        if before is None:
            return 0
        n = len(self)
        # bisect over negated ids, which ascend
        return bisect_left(range(n), -before + 1, key=lambda i: -self.entry(i)[0])

    def entries(self, before: int | None = None):
        """Entries (id, author) with floor <= id < before, newest first."""
        for index in range(self.ids_below(before), len(self)):
            tweet_id, author = self.entry(index)
            if tweet_id < self.floor:
                return
            yield tweet_id, author


def pack(entries) -> bytes:
    """Blob of (id, author) pairs; callers pass them newest first."""
    return b"".join(_PACK.pack(tweet_id, author) for tweet_id, author in entries)


def pack_ids(values) -> bytes:
    return b"".join(_FLOOR.pack(v) for v in values)


def decode(raw: bytes | None) -> Timeline | None:
    if raw is None or len(raw) < HEADER:
        return None
    floor, free = _HEAD.unpack_from(raw)
    return Timeline(floor, raw, HEADER + free * ENTRY)


def encode(floor: int, entries_blob: bytes, free: int = 0) -> bytes:
    """A key's bytes: header, ``free`` empty slots, packed entries (newest first)."""
    return _HEAD.pack(floor, free) + bytes(free * ENTRY) + entries_blob


PLACEHOLDER = encode(PLACEHOLDER_FLOOR, b"")


def slack_for(cap: int) -> int:
    """How far a timeline may grow past ``cap`` before it is trimmed (32 for 800)."""
    # Trimming on every insert slowed fan-out, so keys are trimmed lazily, and
    # as many free slots are reserved at each rewrite for the next inserts to
    # write in place (bench/README.md, "Fan-out after the two-call push").
    return max(4, min(32, cap // 16))


class TimelineStore:
    """Home and user timeline keys (``core.keys``): one script call per key."""

    # Keys per pipeline: bounds the memory of one fan-out slice's round trip.
    PIPELINE_KEYS = 1000

    def __init__(
        self, redis_client, keys: Keys, cap: int, home_ttl_s: int, wait=(0, 0)
    ):
        self.redis = redis_client
        # (replicas, timeout ms) every push waits for: see Settings.wait_replicas
        self.wait = wait
        self.keys = keys
        self.cap = cap
        self.TRIM_SLACK = slack_for(cap)
        self.home_ttl_s = home_ttl_s
        self.push_script = Script(redis_client, PUSH_SOURCE)
        self._rebuild = Script(redis_client, _REBUILD)
        self._remove = Script(redis_client, _REMOVE)

    def home_key(self, user_id: int) -> str:
        return self.keys.home(user_id)

    def user_key(self, user_id: int) -> str:
        return self.keys.user_timeline(user_id)

    def read(self, keys: list[str], touch: str | None = None) -> list[Timeline | None]:
        """Decode ``keys``; ``touch`` also extends that key's life (same trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        if touch is not None:
            pipe.expire(touch, self.home_ttl_s)
        replies = pipe.execute()
        return [decode(raw) for raw in replies[: len(keys)]]

    def push_args(self, entries) -> list:
        """ARGV of the push script (``PUSH_SOURCE``) for ``entries``."""
        blob = pack(sorted(set(entries), reverse=True))
        return [blob, self.cap, self.cap + self.TRIM_SLACK, self.TRIM_SLACK]

    def push(self, keys: list[str], entries) -> int:
        """Merge entries into every existing key; missing keys are left alone.
        Returns the number of keys written."""
        return self.push_many([(keys, entries)])[0]

    def push_many(self, groups) -> list[int]:
        """:meth:`push` for several ``(keys, entries)`` groups in as few round
        trips as the keys allow (one per node in cluster mode)."""
        calls, owners = [], []
        for index, (keys, entries) in enumerate(groups):
            args = self.push_args(entries)
            calls += [(self.push_script, key, args) for key in keys]
            owners += [index] * len(keys)
        written = [0] * len(groups)
        for start in range(0, len(calls), self.PIPELINE_KEYS):
            batch = calls[start : start + self.PIPELINE_KEYS]
            replies = execute(self.redis, batch, self.wait)
            for index, reply in zip(owners[start:], replies, strict=False):
                written[index] += reply
        return written

    def place_holder(self, key: str) -> bool:
        """Claim a missing key before snapshotting Postgres (see module doc);
        False if the key exists (someone else is rebuilding it, or it is)."""
        return bool(self.redis.set(key, PLACEHOLDER, nx=True, ex=self.home_ttl_s))

    def rebuild(self, key: str, entries) -> None:
        """Store a Postgres snapshot: the newest ``cap + 1`` entries, newest first."""
        entries = list(entries)
        if len(entries) <= self.cap:
            floor = 0
        else:
            entries = entries[: self.cap]
            floor = entries[-1][0]
        self._rebuild(
            key,
            pack(entries),
            _FLOOR.pack(floor),
            self.cap,
            self.home_ttl_s,
            self.TRIM_SLACK,
        )

    def remove_ids(self, keys: list[str], tweet_ids) -> int:
        return self._remove_by(keys, "id", tweet_ids)

    def remove_authors(self, keys: list[str], author_ids) -> int:
        return self._remove_by(keys, "author", author_ids)

    def _remove_by(self, keys: list[str], field: str, values) -> int:
        blob = pack_ids(values)
        if not blob or not keys:
            return 0
        changed = 0
        for start in range(0, len(keys), self.PIPELINE_KEYS):
            batch = keys[start : start + self.PIPELINE_KEYS]
            changed += sum(
                execute(self.redis, [(self._remove, k, (field, blob)) for k in batch])
            )
        return changed

    def delete(self, keys: list[str]) -> None:
        """Delete keys one command each (they may belong to several users)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.delete(key)
        if keys:
            pipe.execute()
