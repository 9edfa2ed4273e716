"""Warm timeline pages: ids and cached parts from Redis, rendered in Python.

A warm home page is two round trips: the first to the reader's node (their
timeline window, social bits, activity mark, and whatever the request's other
layers put in it: the token's denylist check), the second one pipeline per
node for the page's tweet parts, their authors' names, the reader's follows
and flags. Followed big accounts add a round trip for their timelines, a page
with retweets one for the originals' parts. Redis only stores and returns;
merging, filtering and rendering happen here, with ``core.render.tweet``, the
same function that renders Postgres rows. Whenever anything is missing, the
answer is None and ``core.timelines`` serves the page the long way.
"""

from __future__ import annotations

import redis

from core import metrics, render
from core.first_round import FirstRound
from core.keys import SEEN_S, Keys
from core.read_cache import (
    HORIZON,
    PULLED,
    ReadCache,
    Social,
    followed,
    parts_of,
)
from core.redis_client import Gets, pipeline, run
from core.timeline_store import ENTRY, HEADER, PLACEHOLDER_FLOOR, decode
from core.timelines import HOME, Timelines, merge_desc

SPARE = 8  # candidates read beyond the page, for entries a check hides


class Miss(Exception):
    """The cache cannot answer this page alone."""


class CachedPages:
    def __init__(self, timelines: Timelines, cache: ReadCache, keys: Keys):
        self.timelines = timelines
        self.store = timelines.store
        self.cache = cache
        self.keys = keys

    def page(self, kind, owner, before, limit, viewer, first: FirstRound):
        """(items, last id) of the page from the cache, or None."""
        store = self.store
        key = self.timelines.key_of(kind, owner)
        reach = HEADER + (store.TRIM_SLACK + limit + SPARE) * ENTRY
        if before is None:
            at_timeline = first.add("GETRANGE", key, 0, reach - 1)
        else:
            at_timeline = first.add("GET", key)
        social_of = owner if kind == HOME else viewer
        if social_of is not None:
            at_social = first.add("HMGET", self.keys.social(social_of), PULLED, HORIZON)
        if kind == HOME:
            at_seen = first.add("SET", self.keys.seen(owner), 1, "NX", "EX", SEEN_S)
        replies = first.run()
        try:
            if kind == HOME and replies[at_seen] is True:
                self._returning(owner)
            social = None
            if social_of is not None:
                social = self._social(social_of, replies[at_social])
            sources = [_usable(replies[at_timeline], before, reach)]
            if kind == HOME and social.pulled:
                sources += self._pulled(social.pulled, before, reach)
            result = self._render(kind, owner, sources, before, limit, viewer, social)
        except Miss as ex:
            metrics.CACHE_MISSES.labels(str(ex)).inc()
            return None
        except redis.RedisError:
            return None
        metrics.CACHE_PAGES.inc()
        return result

    def _returning(self, user_id: int) -> None:
        """The reader's first home read in a day: note it in Postgres, and
        keep their home key for HOME_TTL_S more. One back after INACTIVE_DAYS
        got no fan-out meanwhile, so their home key, if it outlived them, is
        stale: it goes, and is rebuilt."""
        key = self.store.home_key(user_id)
        if self.timelines.mark_active(user_id):
            self.store.delete([key])
            raise Miss("returning")
        self.store.redis.expire(key, self.store.home_ttl_s)

    def _social(self, user_id, fields) -> Social:
        if isinstance(fields, Exception):
            raise Miss("redis")
        if fields[0] is None:
            social, stored = self.cache.load_social(user_id)
            if not stored:
                raise Miss("social")  # it moved while loading: the long way
            return social
        return Social.parse(fields[0], fields[1])

    def _pulled(self, authors, before, reach) -> list:
        pipe = pipeline(self.store.redis)
        for author in authors:
            key = self.store.user_key(author)
            if before is None:
                pipe.execute_command("GETRANGE", key, 0, reach - 1)
            else:
                pipe.execute_command("GET", key)
        return [_usable(raw, before, reach) for raw in run(pipe)]

    def _render(self, kind, owner, sources, before, limit, viewer, social):
        candidates, exhaustive = _candidates(sources, before)
        shown: list[dict] = []
        checked = 0
        while len(shown) < limit and checked < len(candidates):
            batch = candidates[checked : checked + limit - len(shown)]
            checked += len(batch)
            shown += self._visible(kind, owner, batch, viewer, social)
        if len(shown) < limit and not exhaustive:
            raise Miss("short")
        return shown, (int(shown[-1]["id"]) if shown else None)

    def _visible(self, kind, owner, batch, viewer, social) -> list[dict]:
        """The batch's tweets, rendered, minus those of authors no longer followed."""
        authors = sorted({author for _, author in batch})
        # one look at the reader's social hash: follows (home), then flags
        asked = [followed(a) for a in authors] if kind == HOME else []
        if viewer is not None:
            asked += [t for t, _ in batch]
        parts, names, bits = self._fetch(batch, authors, viewer, asked)
        if kind == HOME:
            follows, flags = bits[: len(authors)], bits[len(authors) :]
            shown_authors = _followed(authors, follows) | {owner}
        else:
            shown_authors, flags = set(authors), bits
        visible, originals = [], []
        for index, (tweet_id, author) in enumerate(batch):
            if author not in shown_authors:
                continue
            flag = _flag(tweet_id, flags[index], social) if viewer is not None else None
            tweet, original = _tweet(parts[index], names[author], flag)
            visible.append(tweet)
            if original is not None:
                originals.append((tweet, original))
        if originals:
            self._originals(originals, viewer, social)
        return visible

    def _originals(self, retweets, viewer, social) -> None:
        """Nest the originals of the retweets among the visible tweets."""
        entries = [original for _, original in retweets]
        authors = sorted({author for _, author in entries})
        asked = [t for t, _ in entries] if viewer is not None else []
        parts, names, flags = self._fetch(entries, authors, viewer, asked)
        for index, (tweet, (tweet_id, author)) in enumerate(retweets):
            flag = _flag(tweet_id, flags[index], social) if viewer is not None else None
            tweet["retweet_of"], _ = _tweet(parts[index], names[author], flag)

    def _fetch(self, entries, authors, viewer, asked):
        """One round trip (one per node): the entries' cached tweets, their
        authors' names, and the ``asked`` fields of the viewer's social hash."""
        pipe = pipeline(self.store.redis)
        keys = [self.keys.tweet(author, tweet_id) for tweet_id, author in entries]
        keys += [self.keys.name(author) for author in authors]
        gets = Gets(pipe, keys)
        if asked:
            pipe.execute_command("HMGET", self.keys.social(viewer), *asked)
        replies = run(pipe)
        values = gets.values(replies, 0)
        names = dict(zip(authors, values[len(entries) :], strict=True))
        return values[: len(entries)], names, (replies[-1] if asked else [])


def _usable(raw, before, reach):
    """(the timeline, whether it was read whole) from a GET or a GETRANGE."""
    if isinstance(raw, Exception):
        raise Miss("redis")
    timeline = decode(raw)
    if timeline is None or timeline.floor == PLACEHOLDER_FLOOR:
        raise Miss("key")
    return timeline, before is not None or len(raw) < reach


def _candidates(sources, before):
    """Entries certain to be the newest below ``before`` (all sources'), and
    whether they are all there is (nothing below, in Redis or Postgres)."""
    floor = max(timeline.floor for timeline, _ in sources)
    # A window that ends before its key does: nothing older than its last
    # entry is known, so nothing older than that may be shown from any source.
    bound = floor
    for timeline, whole in sources:
        if not whole and len(timeline):
            bound = max(bound, timeline.entry(len(timeline) - 1)[0])
    out, exhaustive = [], bound == 0
    for entry in merge_desc(t.entries(before) for t, _ in sources):
        if entry[0] < bound:
            return out, False
        out.append(entry)
    return out, exhaustive


def _followed(authors, reply) -> set[int]:
    return {a for a, present in zip(authors, reply, strict=True) if present}


def _flag(tweet_id, raw, social) -> tuple[bool, bool]:
    if tweet_id < social.horizon:
        raise Miss("horizon")  # likes that old were not loaded
    bits = int(raw or 0)
    return bool(bits & 1), bool(bits & 2)


def _tweet(raw, name, flags):
    if raw is None or name is None:
        raise Miss("part")
    fixed, likes, retweets, original, by = parts_of(raw)
    tweet = render.tweet(fixed, name.decode(), likes, retweets, flags)
    return tweet, ((original, by) if original is not None else None)
