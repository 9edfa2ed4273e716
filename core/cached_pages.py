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

from typing import NamedTuple

import redis

from core import metrics, render
from core.first_round import FirstRound
from core.keys import SEEN_S, Keys
from core.local_cache import LocalCache
from core.read_cache import (
    HORIZON,
    PULLED,
    ReadCache,
    Social,
    card_of,
    counts_of,
    followed,
)
from core.redis_client import Gets, pipeline, run
from core.timeline_store import ENTRY, HEADER, PLACEHOLDER_FLOOR, decode
from core.timelines import HOME, Timelines, merge_desc

SPARE = 8  # candidates read beyond the page, for entries a check hides


class Miss(Exception):
    """The cache cannot answer this page alone."""


class StaleOwner(Exception):
    """The guessed user id no longer goes by the username read."""


class CachedPages:
    def __init__(
        self, timelines: Timelines, cache: ReadCache, keys: Keys, local: LocalCache
    ):
        self.timelines = timelines
        self.store = timelines.store
        self.cache = cache
        self.keys = keys
        self.local = local

    def page(self, kind, owner, before, limit, viewer, first: FirstRound, name=None):
        """(items, last id) of the page from the cache, or None. ``name``: the
        username ``owner`` was guessed from, checked against the owner's name
        key in the first round trip (StaleOwner if it is not theirs)."""
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
        if name is not None:
            at_name = first.add("GET", self.keys.name(owner))
        replies = first.run()
        if name is not None and replies[at_name] != name.encode():
            raise StaleOwner(name)
        social = None
        try:
            if kind == HOME and replies[at_seen] is True:
                self._returning(owner)
            if social_of is not None:
                social = self._social(social_of, replies[at_social])
            sources = [_usable(replies[at_timeline], before is None, reach)]
            if kind == HOME and social.pulled:
                sources += self._pulled(social.pulled, before, reach)
            result = self._render(kind, owner, sources, before, limit, viewer, social)
        except Miss as ex:
            if social is not None:
                # a pulled tweet gone from Redis may be a delete: read them anew
                self.local.pulled.pop_many(social.pulled)
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
        """The pulled authors' timelines: whole ones kept by the process, or
        only the page's window when it keeps none."""
        keep = self.local.pulled.on
        known = self.local.pulled.get_many(authors)
        missing = [a for a in authors if a not in known]
        ranged = before is None and not keep
        pipe = pipeline(self.store.redis)
        for author in missing:
            key = self.store.user_key(author)
            if ranged:
                pipe.execute_command("GETRANGE", key, 0, reach - 1)
            else:
                pipe.execute_command("GET", key)
        read = [_usable(raw, ranged, reach) for raw in run(pipe)] if missing else []
        if keep:
            self.local.pulled.put_many(
                {a: timeline for a, (timeline, _) in zip(missing, read, strict=True)}
            )
        sources = [(timeline, True) for timeline in known.values()]
        return sources + read

    def _render(self, kind, owner, sources, before, limit, viewer, social):
        candidates = Candidates(sources, before)
        shown: list[dict] = []
        while len(shown) < limit:
            batch = candidates.take(limit - len(shown))
            if not batch:
                break
            shown += self._visible(kind, owner, batch, viewer, social)
        if len(shown) < limit and not candidates.exhaustive:
            raise Miss("short")
        return shown, (int(shown[-1]["id"]) if shown else None)

    def _visible(self, kind, owner, batch, viewer, social) -> list[dict]:
        """The batch's tweets, rendered, minus those of authors no longer
        followed. The originals of retweets whose cards the process knows
        come in the same round trip; the others in one more."""
        cards = self.local.cards.get_many(t for t, _ in batch)
        known = {(c.original, c.by) for c in cards.values() if c.original is not None}
        entries = batch + sorted(known - set(batch))
        authors = sorted({author for _, author in batch})
        asked = [followed(a) for a in authors] if kind == HOME else []
        fetched = self._fetch(entries, viewer, asked, social, cards)
        if kind == HOME:
            shown_authors = _followed(authors, fetched.bits) | {owner}
        else:
            shown_authors = set(authors)
        visible, originals = [], []
        for tweet_id, author in batch:
            if author not in shown_authors:
                continue
            tweet, card = fetched.tweets[tweet_id]
            visible.append(tweet)
            if card.original is None:
                continue
            if card.original in fetched.tweets:
                tweet["retweet_of"] = fetched.tweets[card.original][0]
            else:
                originals.append((tweet, (card.original, card.by)))
        if originals:
            self._originals(originals, viewer, social)
        return visible

    def _originals(self, retweets, viewer, social) -> None:
        """Nest the originals of the retweets among the visible tweets."""
        entries = sorted({original for _, original in retweets})
        fetched = self._fetch(entries, viewer, [], social, {})
        for tweet, (original, _) in retweets:
            tweet["retweet_of"] = fetched.tweets[original][0]

    def _fetch(self, entries, viewer, asked, social, cards) -> Fetched:
        """One round trip (one per node): the entries' cached tweets, their
        authors' names, the ``asked`` fields of the viewer's social hash and
        the viewer's flags of the entries; the tweets rendered."""
        authors = sorted({author for _, author in entries})
        pipe = pipeline(self.store.redis)
        keys = [self.keys.tweet(author, tweet_id) for tweet_id, author in entries]
        keys += [self.keys.name(author) for author in authors]
        gets = Gets(pipe, keys)
        fields = asked + ([t for t, _ in entries] if viewer is not None else [])
        if fields:
            pipe.execute_command("HMGET", self.keys.social(viewer), *fields)
        replies = run(pipe)
        values = gets.values(replies, 0)
        names = dict(zip(authors, values[len(entries) :], strict=True))
        bits = replies[-1] if fields else []
        flags = bits[len(asked) :]
        tweets, new_cards = {}, {}
        for index, (tweet_id, author) in enumerate(entries):
            raw = values[index]
            if raw is None or names[author] is None:
                raise Miss("part")
            card = cards.get(tweet_id)
            if card is None:
                card = new_cards[tweet_id] = card_of(raw)
            flag = _flag(tweet_id, flags[index], social) if viewer is not None else None
            name = names[author].decode()
            tweet = render.tweet(card.fixed, name, *counts_of(raw), flag)
            tweets[tweet_id] = (tweet, card)
        self.local.cards.put_many(new_cards)
        return Fetched(tweets, bits[: len(asked)])


class Fetched(NamedTuple):
    tweets: dict  # tweet id -> (rendered tweet, its card)
    bits: list  # the replies to the ``asked`` fields


def _usable(raw, ranged: bool, reach: int):
    """(the timeline, whether it was read whole) from a GET, or a GETRANGE
    (``ranged``) of ``reach`` bytes."""
    if isinstance(raw, Exception):
        raise Miss("redis")
    timeline = decode(raw)
    if timeline is None or timeline.floor == PLACEHOLDER_FLOOR:
        raise Miss("key")
    return timeline, not ranged or len(raw) < reach


class Candidates:
    """The sources' entries below ``before``, newest first, as far as they
    are certain to be the newest there (each source's floor, and the end of
    a window read only in part, bound what is known); taken lazily, as a
    whole pulled timeline may hold hundreds above that bound."""

    def __init__(self, sources, before):
        bound = max(timeline.floor for timeline, _ in sources)
        for timeline, whole in sources:
            if not whole and len(timeline):
                bound = max(bound, timeline.entry(len(timeline) - 1)[0])
        self._bound = bound
        self._merged = merge_desc(t.entries(before) for t, _ in sources)
        self.exhaustive = False  # all there is: nothing older in Redis or Postgres

    def take(self, n: int) -> list:
        out = []
        for entry in self._merged:
            if entry[0] < self._bound:
                break
            out.append(entry)
            if len(out) == n:
                return out
        else:
            self.exhaustive = self._bound == 0
        self._merged = iter(())
        return out


def _followed(authors, reply) -> set[int]:
    return {a for a, present in zip(authors, reply, strict=True) if present}


def _flag(tweet_id, raw, social) -> tuple[bool, bool]:
    if tweet_id < social.horizon:
        raise Miss("horizon")  # likes that old were not loaded
    bits = int(raw or 0)
    return bool(bits & 1), bool(bits & 2)
