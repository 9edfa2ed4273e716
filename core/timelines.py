"""Home and user timelines: hybrid fan-out on write, pull on read, Postgres as truth.

Authors below FANOUT_THRESHOLD followers are pushed into their followers' home
keys by the workers (:func:`core.push_pull.is_pulled` is the one rule); bigger
authors are pulled from their user-timeline keys at read time and merged by
id. Every read re-checks what it shows (the tweet still exists, the author is
still followed) -- against the read cache (``core.cached_pages``) or, for
whatever that lacks, against Postgres -- so deletes and unfollows are
invisible on the very next read even before the clean-up jobs run. Pages
below what Redis holds, reads while Redis is down and reads of a key being
rebuilt come from Postgres.

The write hooks at the end are what the services call after their commit.
"""

from __future__ import annotations

import heapq
import itertools
import logging

import redis

from core import db, hydrate, metrics, outbox
from core.errors import BadRequest
from core.models import Tweet, User
from core.push_pull import PULLED_SQL, is_pulled
from core.read_cache import ReadCache
from core.redis_client import execute
from core.timeline_store import PLACEHOLDER_FLOOR, Timeline, TimelineStore

log = logging.getLogger(__name__)

HOME, USER = "home", "user"
MAX_OFFSET = 10_000
NO_BOUND = (1 << 63) - 1

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
_ORACLES = {HOME: _HOME_ORACLE, USER: _USER_ORACLE}
# A follower ``u`` who read their home in the last INACTIVE_DAYS (a parameter).
ACTIVE = "u.active_at > now() - make_interval(days => %s)"


class NotCached(Exception):
    """A timeline key is missing or being rebuilt: serve from Postgres."""


class Timelines:
    def __init__(
        self,
        store: TimelineStore,
        fanout_threshold: int,
        cache: ReadCache | None = None,
        inactive_days: int = 30,
    ):
        self.store = store
        self.threshold = fanout_threshold
        self.cache = cache  # None: every read checks Postgres (workers, tools)
        self.inactive_days = inactive_days

    # ---------------------------------------------------------------- reads
    def home_page(self, user_id, before, offset, limit, viewer_id=None) -> list[dict]:
        """One page of the home timeline, newest first (ids < before)."""
        return self._page(HOME, user_id, before, offset, limit, viewer_id)

    def user_page(self, user_id, before, offset, limit, viewer_id=None) -> list[dict]:
        """One page of a user's own tweets and retweets, newest first."""
        return self._page(USER, user_id, before, offset, limit, viewer_id)

    def _page(self, kind, user_id, before, offset, limit, viewer_id) -> list[dict]:
        if offset:  # the legacy start= offset: straight from Postgres
            return self._oracle_page(kind, user_id, before, offset, limit, viewer_id)
        try:
            if kind == HOME:
                sources = self._home_sources(user_id)
            else:
                key = self.store.user_key(user_id)
                sources = [self._usable(key, USER, user_id, self.store.read([key])[0])]
        except NotCached:
            return self._oracle_page(kind, user_id, before, 0, limit, viewer_id)
        except redis.RedisError as ex:
            log.warning("%s timeline from Postgres: redis unavailable (%s)", kind, ex)
            return self._oracle_page(kind, user_id, before, 0, limit, viewer_id)
        return self._assemble(kind, user_id, sources, before, limit, viewer_id)

    def _home_sources(self, user_id: int) -> list[Timeline]:
        """The reader's home key and the user keys of pulled authors."""
        home = self.store.home_key(user_id)
        wanted = [(home, HOME, user_id)] + [
            (self.store.user_key(a), USER, a) for a in self.pulled_authors(user_id)
        ]
        found = self.store.read([key for key, _, _ in wanted], touch=home)
        if len(found) > 1:
            metrics.PULL_MERGES.inc()
        return [
            self._usable(key, kind, owner, timeline)
            for (key, kind, owner), timeline in zip(wanted, found, strict=True)
        ]

    def pulled_authors(self, user_id: int) -> list[int]:
        """Followees at or above the threshold: their tweets are read, not pushed."""
        # Few users are that big: probe them (partial index users_popular)
        # and check each against the reader's follows, rather than the reverse.
        rows = db.fetchall(
            f"SELECT u.id FROM users u WHERE {PULLED_SQL} AND EXISTS"
            " (SELECT 1 FROM follows f WHERE f.follower_id = %(user)s"
            " AND f.followee_id = u.id)",
            {"threshold": self.threshold, "user": user_id},
        )
        return [r.id for r in rows]

    def _assemble(self, kind, user_id, sources, before, limit, viewer_id):
        floor = max(t.floor for t in sources)  # merged sources are exact above it
        candidates = itertools.takewhile(
            lambda entry: entry[0] >= floor,
            merge_desc(t.entries(before) for t in sources),
        )
        page: list[dict] = []
        while len(page) < limit:
            batch = list(itertools.islice(candidates, limit - len(page) + 4))
            if not batch:
                break
            reader = user_id if kind == HOME else None
            page.extend(self._visible(reader, batch, viewer_id))
        page = page[:limit]
        if len(page) < limit and floor > 0:
            # Redis is exhausted down to its floor: Postgres has the rest.
            bound = min(before or NO_BOUND, floor)
            page.extend(
                self._oracle_page(kind, user_id, bound, 0, limit - len(page), viewer_id)
            )
        return page

    def _visible(self, reader, batch, viewer_id) -> list[dict]:
        """The batch's entries that are still live (and still followed)."""
        tweets = hydrate.load([tweet_id for tweet_id, _ in batch], viewer_id, reader)
        if self.cache is not None:
            self.cache.fill(tweets.values())  # the next read of these is warm
        return [tweets[tweet_id] for tweet_id, _ in batch if tweet_id in tweets]

    def _oracle_page(self, kind, user_id, before, offset, limit, viewer_id):
        """The page straight from Postgres: the definition of a timeline."""
        if offset > MAX_OFFSET:
            raise BadRequest(
                f"start must be at most {MAX_OFFSET}; use cursor", code="invalid_start"
            )
        metrics.POSTGRES_PAGES.labels(kind).inc()
        rows = db.fetchall(
            _ORACLES[kind],
            {"u": user_id, "before": before or NO_BOUND, "n": limit, "skip": offset},
        )
        tweets = hydrate.load([r.id for r in rows], viewer_id)
        return [tweets[r.id] for r in rows if r.id in tweets]

    # ------------------------------------------------------------- rebuilds
    def _usable(self, key, kind, owner, timeline: Timeline | None) -> Timeline:
        """``timeline`` if it can serve reads; else NotCached, and a rebuild is
        under way (this read and the next ones are served from Postgres)."""
        if timeline is not None and timeline.floor != PLACEHOLDER_FLOOR:
            return timeline
        if timeline is None:
            self.request_rebuild(kind, owner)
        raise NotCached(key)

    def request_rebuild(self, kind: str, user_id: int) -> None:
        """Hold a placeholder in the missing key (pushes that race with the
        rebuild land in it) and have a worker rebuild it from Postgres."""
        key = self.key_of(kind, user_id)
        if self.store.place_holder(key):
            db.in_transaction(
                lambda: outbox.enqueue(outbox.REBUILD_TIMELINE, kind, user_id)
            )

    def rebuild(self, kind: str, user_id: int) -> None:
        """Snapshot Postgres into the key (the worker's side of a rebuild)."""
        metrics.TIMELINE_REBUILDS.labels(kind).inc()
        key = self.key_of(kind, user_id)
        self.store.place_holder(key)  # before the snapshot (see timeline_store)
        self.store.rebuild(key, self.snapshot(kind, user_id))

    def snapshot(self, kind: str, user_id: int) -> list[tuple[int, int]]:
        """What a rebuilt key holds: the newest ``cap + 1`` entries from Postgres."""
        return db.fetchall(
            _ORACLES[kind],
            {"u": user_id, "before": NO_BOUND, "n": self.store.cap + 1, "skip": 0},
        )

    def key_of(self, kind: str, user_id: int) -> str:
        if kind == HOME:
            return self.store.home_key(user_id)
        return self.store.user_key(user_id)

    def mark_active(self, user_id: int) -> bool:
        """The user reads their home: fan-outs reach them (again). True if
        they were inactive until now."""
        row = db.fetchone(
            "UPDATE users u SET active_at = now() FROM users old"
            " WHERE u.id = %s AND old.id = u.id"
            " RETURNING old.active_at <= now() - make_interval(days => %s)"
            " AS was_inactive",
            (user_id, self.inactive_days),
        )
        return bool(row and row.was_inactive)

    # ----------------------------------------------- write hooks (after commit)
    def add_own(self, author_id: int, tweet_id: int, rendered=None) -> None:
        """Read-your-writes: the author's own keys get the tweet in the request.
        With ``rendered`` (the tweet as shown), the read cache gets its parts
        in the same round trip: a new tweet is read most in its first minutes."""
        entries = self.store.push_args([(tweet_id, author_id)])
        calls = [
            (self.store.push_script, self.store.home_key(author_id), entries),
            (self.store.push_script, self.store.user_key(author_id), entries),
        ]
        if rendered is not None and self.cache is not None:
            calls += self.cache.fill_calls([rendered])
        execute(self.store.redis, calls)

    def remove_own(self, author_id: int, tweet_ids: list[int]) -> None:
        self.store.remove_ids(
            [self.store.home_key(author_id), self.store.user_key(author_id)], tweet_ids
        )

    def unfollowed(self, user_id: int, author_id: int) -> None:
        """The author's entries leave the reader's home at once."""
        self.store.remove_authors([self.store.home_key(user_id)], [author_id])

    def account_deleted(self, user_id: int) -> None:
        self.store.delete([self.store.home_key(user_id), self.store.user_key(user_id)])

    # ------------------------------------------------------ the workers' side
    def followers(
        self,
        author_id: int,
        after: int = 0,
        upto: int = NO_BOUND,
        limit: int = 1 << 62,
    ) -> list[tuple[int, int]]:
        """(follower id, follow id) pairs in follow-id order, after < id <= upto.

        Slices are by follow id so that the (followee_id, id) index serves
        each chunk of a big fan-out as one range scan. Inactive followers are
        left out: their homes are rebuilt when they come back.
        """
        return db.fetchall(
            "SELECT f.follower_id, f.id FROM follows f"
            " JOIN users u ON u.id = f.follower_id"
            " WHERE f.followee_id = %s AND f.id > %s AND f.id <= %s"
            f" AND {ACTIVE} ORDER BY f.id LIMIT %s",
            (author_id, after, upto, self.inactive_days, limit),
        )

    def follower_ids(self, author_id: int, **bounds) -> list[int]:
        return [follower for follower, _ in self.followers(author_id, **bounds)]

    def push_to_followers(self, follower_ids: list[int], entries) -> int:
        keys = [self.store.home_key(f) for f in follower_ids]
        return self.store.push(keys, entries)

    def author_is_pulled(self, author_id: int) -> bool:
        count = User.select(User.follower_count).where(User.id == author_id).scalar()
        return count is not None and is_pulled(count, self.threshold)

    def recent_entries(self, author_id: int) -> list[tuple[int, int]]:
        return list(
            Tweet.select(Tweet.id, Tweet.author)
            .where(Tweet.author == author_id)
            .order_by(Tweet.id.desc())
            .limit(self.store.cap)
            .tuples()  # (tweet id, author id): the timeline store's entries
        )


def merge_desc(iterables):
    """Merge newest-first (id, author) streams, dropping duplicate ids."""
    last = None
    for tweet_id, author in heapq.merge(*iterables, key=lambda e: -e[0]):
        if tweet_id != last:
            last = tweet_id
            yield tweet_id, author
