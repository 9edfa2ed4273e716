"""Home and user timelines: hybrid fan-out on write, pull on read, Postgres as truth.

Authors below FANOUT_THRESHOLD followers are pushed into their followers' home
keys by the workers; bigger authors are pulled from their user-timeline keys at
read time and merged by id. Every read re-checks what it shows (the tweet still
exists, the author is still followed) -- against the read cache (core.read_cache,
which writers correct right after their commit) or, for whatever it lacks, against
Postgres -- so deletes and unfollows are invisible on the very next read even
before the clean-up jobs run. Pages that reach below what Redis holds, and reads
while Redis is down, come from Postgres.
"""

from __future__ import annotations

import heapq
import itertools
import logging

import redis

from core import db, hydrate, metrics
from core.errors import BadRequest
from core.read_cache import CachedPage, ReadCache
from core.thread_script import ThreadScript
from core.timeline_store import (
    PLACEHOLDER,
    PLACEHOLDER_FLOOR,
    PUSH_SOURCE,
    Timeline,
    TimelineStore,
    decode,
)

log = logging.getLogger(__name__)

HOME, USER = "home", "user"
MAX_OFFSET = 10_000

_HOME_ORACLE = (
    "SELECT t.id, t.author_id FROM tweets t"
    " WHERE (t.author_id = %(u)s OR t.author_id IN"
    " (SELECT followee_id FROM follows WHERE follower_id = %(u)s))"
    " AND t.id < %(before)s ORDER BY t.id DESC LIMIT %(n)s OFFSET %(skip)s"
)
_USER_ORACLE = (
    "SELECT t.id, t.author_id FROM tweets t WHERE t.author_id = %(u)s"
    " AND t.id < %(before)s ORDER BY t.id DESC LIMIT %(n)s OFFSET %(skip)s"
)
NO_BOUND = (1 << 63) - 1


class Timelines:
    def __init__(
        self,
        store: TimelineStore,
        fanout_threshold: int,
        cache: ReadCache | None = None,
    ):
        self.store = store
        self.threshold = fanout_threshold
        self.cache = cache  # None: every read checks Postgres (workers, tools)
        # the request path's own writes, on the thread's connection
        self._push_own = ThreadScript(store.redis, PUSH_SOURCE)

    # ---------------------------------------------------------------- reads
    def home_page(
        self,
        user_id: int,
        before: int | None,
        offset: int,
        limit: int,
        viewer_id: int | None = None,
    ) -> list[dict]:
        """One page of the home timeline, newest first (ids < before)."""
        return self._page(HOME, user_id, before, offset, limit, viewer_id)

    def user_page(
        self,
        user_id: int,
        before: int | None,
        offset: int,
        limit: int,
        viewer_id: int | None = None,
    ) -> list[dict]:
        """One page of a user's own tweets and retweets, newest first."""
        return self._page(USER, user_id, before, offset, limit, viewer_id)

    def cached_page(
        self,
        kind: str,
        owner: int | str,
        before: int | None,
        limit: int,
        viewer_id: int | None,
        deny_keys: list[str] | None = None,
    ) -> CachedPage | object | None:
        """The page rendered by Redis alone (warm caches), or None.

        ``owner`` is a user id, or for a user timeline also a username (then
        Redis resolves it too; ``CachedPage.owner`` tells the id)."""
        if self.cache is None:
            return None
        if isinstance(owner, str):
            mode, key, owner_id = "named", self.cache.name_key(owner), 0
        elif kind == HOME:
            mode, key, owner_id = HOME, self.store.home_key(owner), owner
        else:
            mode, key, owner_id = USER, self.store.user_key(owner), owner
        try:
            return self.cache.page(
                mode,
                key,
                owner_id,
                viewer_id,
                before,
                limit,
                self.store.home_ttl_s,
                self.store.TRIM_SLACK,
                deny_keys,
            )
        except redis.RedisError as ex:
            log.warning("%s page from the long path: %s", kind, ex)
            return None

    def _page(self, kind, user_id, before, offset, limit, viewer_id) -> list[dict]:
        oracle = _HOME_ORACLE if kind == HOME else _USER_ORACLE
        if offset:  # the legacy start= offset: straight from Postgres
            return self._oracle_page(oracle, user_id, before, offset, limit, viewer_id)
        try:
            if kind == HOME:
                sources, floor = self._home_sources(user_id)
            else:
                timeline = self._ensure(self.store.user_key(user_id), user_id, USER)
                sources, floor = [timeline], timeline.floor
        except redis.RedisError as ex:
            log.warning("%s timeline from Postgres: redis unavailable (%s)", kind, ex)
            return self._oracle_page(oracle, user_id, before, 0, limit, viewer_id)
        return self._assemble(
            user_id,
            sources,
            floor,
            before,
            limit,
            viewer_id,
            oracle,
            check_follow=kind == HOME,
        )

    def _home_sources(self, user_id: int) -> tuple[list[Timeline], int]:
        """The reader's home key and the user keys of pulled authors, one round trip."""
        home = self.store.home_key(user_id)
        wanted = [(home, user_id, HOME)] + [
            (self.store.user_key(a), a, USER) for a in self.pulled_authors(user_id)
        ]
        found = self.store.read([key for key, _, _ in wanted], touch=home)
        sources = [
            self._ensure(key, owner, kind, timeline)
            for (key, owner, kind), timeline in zip(wanted, found, strict=True)
        ]
        if len(sources) > 1:
            metrics.PULL_MERGES.inc()
        # Merged sources are exact only above the highest floor.
        return sources, max(t.floor for t in sources)

    def pulled_authors(self, user_id: int) -> list[int]:
        """Followees at or above the threshold: their tweets are read, not pushed."""
        # Few users are that big: probe them (partial index users_popular)
        # and check each against the reader's follows, rather than the reverse.
        rows = db.fetchall(
            "SELECT u.id FROM users u WHERE u.follower_count >= %s AND EXISTS"
            " (SELECT 1 FROM follows f WHERE f.follower_id = %s"
            " AND f.followee_id = u.id)",
            (self.threshold, user_id),
        )
        return [r[0] for r in rows]

    def _assemble(
        self, user_id, sources, floor, before, limit, viewer_id, oracle, check_follow
    ) -> list[dict]:
        candidates = itertools.takewhile(
            lambda entry: entry[0] >= floor,
            _merge_desc(t.entries(before) for t in sources),
        )
        page: list[dict] = []
        while len(page) < limit:
            batch = list(itertools.islice(candidates, limit - len(page) + 4))
            if not batch:
                break
            page.extend(self._visible(user_id, batch, viewer_id, check_follow))
        page = page[:limit]
        if len(page) < limit and floor > 0:
            # Redis is exhausted down to its floor: Postgres has the rest.
            bound = min(before or NO_BOUND, floor)
            page.extend(
                self._oracle_page(
                    oracle, user_id, bound, 0, limit - len(page), viewer_id
                )
            )
        return page

    def _visible(self, user_id, batch, viewer_id, check_follow) -> list[dict]:
        """The batch's entries that are still live (and still followed)."""
        reader = user_id if check_follow else None
        tweets = hydrate.load([tweet_id for tweet_id, _ in batch], viewer_id, reader)
        if self.cache is not None:
            self.cache.fill(tweets.values())  # the next read of these is warm
        return [tweets[tweet_id] for tweet_id, _ in batch if tweet_id in tweets]

    def _oracle_page(self, sql, user_id, before, offset, limit, viewer_id):
        """The page straight from Postgres: the definition of a timeline."""
        if offset > MAX_OFFSET:
            raise BadRequest(
                f"start must be at most {MAX_OFFSET}; use cursor", code="invalid_start"
            )
        metrics.POSTGRES_PAGES.labels(HOME if sql is _HOME_ORACLE else USER).inc()
        rows = db.fetchall(
            sql,
            {"u": user_id, "before": before or NO_BOUND, "n": limit, "skip": offset},
        )
        tweets = hydrate.load([r[0] for r in rows], viewer_id)
        return [tweets[r[0]] for r in rows if r[0] in tweets]

    # ------------------------------------------------------------- rebuilds
    def _ensure(
        self, key: str, user_id: int, kind: str, timeline: Timeline | None = None
    ) -> Timeline:
        """The timeline at ``key`` (as read, if given), rebuilt when missing."""
        if timeline is None:
            timeline = self.store.read([key])[0]
        if timeline is not None and timeline.floor != PLACEHOLDER_FLOOR:
            return timeline
        self.rebuild(key, user_id, kind)
        rebuilt = self.store.read([key])[0]
        if rebuilt is None:  # evicted at once: serve this read from Postgres
            return decode(PLACEHOLDER)
        return rebuilt

    def rebuild(self, key: str, user_id: int, kind: str) -> None:
        metrics.TIMELINE_REBUILDS.labels(kind).inc()
        self.store.place_holder(key)
        sql = _HOME_ORACLE if kind == HOME else _USER_ORACLE
        rows = db.fetchall(
            sql, {"u": user_id, "before": NO_BOUND, "n": self.store.cap + 1, "skip": 0}
        )
        self.store.rebuild(key, rows)

    # ----------------------------------------------------------- write side
    def add_own(self, author_id: int, tweet_id: int, rendered=None) -> None:
        """Read-your-writes: the author's own keys get the tweet in the request.
        With ``rendered`` (the tweet as shown), the read cache gets its parts
        in the same round trip: a new tweet is read most in its first minutes."""
        keys = [self.store.home_key(author_id), self.store.user_key(author_id)]
        push = (self._push_own, keys, self.store.push_args([(tweet_id, author_id)]))
        if rendered is None or self.cache is None:
            self._push_own.together(push)
            return
        fill = (self.cache.fill_script, [], self.cache.fill_args([rendered]))
        self._push_own.together(push, fill)

    def remove_own(self, author_id: int, tweet_ids: list[int]) -> None:
        self.store.remove_ids(
            [self.store.home_key(author_id), self.store.user_key(author_id)], tweet_ids
        )

    def is_pulled(self, author_id: int) -> bool:
        row = db.fetchone(
            "SELECT follower_count FROM users WHERE id = %s", (author_id,)
        )
        return row is not None and row[0] >= self.threshold

    def followers(
        self,
        author_id: int,
        after: int = 0,
        upto: int = NO_BOUND,
        limit: int = 1 << 62,
    ) -> list[tuple[int, int]]:
        """(follower id, follow id) pairs in follow-id order, after < id <= upto.

        Slices are by follow id so that the (followee_id, id) index serves
        each chunk of a big fan-out as one range scan.
        """
        return db.fetchall(
            "SELECT follower_id, id FROM follows WHERE followee_id = %s"
            " AND id > %s AND id <= %s ORDER BY id LIMIT %s",
            (author_id, after, upto, limit),
        )

    def follower_ids(self, author_id: int, **bounds) -> list[int]:
        return [follower for follower, _ in self.followers(author_id, **bounds)]

    def push_to_followers(self, follower_ids: list[int], entries) -> int:
        keys = [self.store.home_key(f) for f in follower_ids]
        return self.store.push(keys, entries)

    def recent_entries(self, author_id: int) -> list[tuple[int, int]]:
        return db.fetchall(
            "SELECT id, author_id FROM tweets WHERE author_id = %s"
            " ORDER BY id DESC LIMIT %s",
            (author_id, self.store.cap),
        )


def _merge_desc(iterables):
    """Merge newest-first (id, author) streams, dropping duplicate ids."""
    last = None
    for tweet_id, author in heapq.merge(*iterables, key=lambda e: -e[0]):
        if tweet_id != last:
            last = tweet_id
            yield tweet_id, author
