"""Timeline maintenance performed by the workers (no Dramatiq in here).

Every function is idempotent: timeline writes are set-like merges keyed by tweet
id, so a redelivered or replayed message changes nothing. A tweet that no longer
exists is a job done, not an error.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager

from core import db, ids, metrics
from core.container import Deps
from core.models import Follow
from core.push_pull import is_pulled
from core.timelines import ACTIVE

ChunkSender = Callable[[int, int, int, int], None]


def _observe_lag(tweet_id: int) -> None:
    metrics.FANOUT_LAG.observe(max(0.0, time.time() - ids.timestamp_of(tweet_id)))


def fanout_tweet(
    deps: Deps, tweet_id: int, author_id: int, send_chunk: ChunkSender
) -> int:
    """Push a new tweet to followers' homes, or leave it to be pulled: the
    one-tweet case of :func:`fanout_tweets` (messages sent before the relay
    batched them)."""
    return fanout_tweets(deps, [[tweet_id, author_id]], send_chunk)


# Why: docs/design.md#fan-out-batches-and-repeated-chunks
def fanout_tweets(deps: Deps, entries: list, send_chunk: ChunkSender) -> int:
    """:func:`fanout_tweet` for a batch of ``[tweet_id, author_id]`` entries."""
    tl, store = deps.timelines, deps.timelines.store
    chunk = deps.settings.fanout_chunk_size
    wanted = sorted({int(tweet_id) for tweet_id, _ in entries})
    if not wanted:
        return 0
    # Hand-written, like the follower query below: the fan-out's per-job path
    # (see README, "Queries").
    rows = db.fetchall(
        "SELECT t.id, t.author_id, u.follower_count FROM users u"
        " JOIN tweets t ON u.id = t.author_id WHERE t.id = ANY(%s)",
        (wanted,),
    )  # deleted tweets are simply missing: nothing to do for them
    tweets: dict[int, list[int]] = {}  # author -> tweet ids of the batch
    counts: dict[int, int] = {}
    for row in rows:
        tweets.setdefault(row.author_id, []).append(row.id)
        counts[row.author_id] = row.follower_count
    pushed = {a: n for a, n in counts.items() if not is_pulled(n, tl.threshold)}
    small = [a for a, n in pushed.items() if n <= chunk]
    chunked = [a for a, n in pushed.items() if n > chunk]
    followers: dict[int, list[tuple[int, int]]] = {}
    if small:
        for row in db.fetchall(
            "SELECT f.followee_id, f.follower_id, f.id FROM follows f"
            " JOIN users u ON u.id = f.follower_id"
            f" WHERE f.followee_id = ANY(%s) AND {ACTIVE}"
            " ORDER BY f.followee_id, f.id",
            (small, tl.inactive_days),
        ):
            followers.setdefault(row.followee_id, []).append((row.follower_id, row.id))
    for author_id in chunked:
        followers[author_id] = tl.followers(author_id)
    own, pushes = [], []  # (keys, entries) for the pipeline
    done_here = []  # tweets whose fan-out ends with this pipeline
    for author_id, tweet_ids in tweets.items():
        batch = [(t, author_id) for t in tweet_ids]
        own.append(([store.home_key(author_id), store.user_key(author_id)], batch))
        mine = followers.get(author_id, [])
        if len(mine) <= chunk:
            if mine:
                pushes.append(([store.home_key(f) for f, _ in mine], batch))
            done_here += tweet_ids
            continue
        # A big follower list: chunk messages, one per tweet and slice, so
        # each message stays short and a crash redoes one chunk, not the whole
        # fan-out. Bounds are follow ids. The chunks observe the lag.
        for tweet_id in tweet_ids:
            after = 0
            for start in range(0, len(mine), chunk):
                upto = mine[min(start + chunk, len(mine)) - 1][1]
                send_chunk(tweet_id, author_id, after, upto)
                after = upto
    written = _push_all(store, own, pushes)
    metrics.FANOUT_ENTRIES.inc(written)
    for tweet_id in done_here:
        _observe_lag(tweet_id)
    return written


def _push_all(store, own: list, pushes: list) -> int:
    """Run ``TimelineStore.push`` for every (keys, entries) in one pipelined
    round trip per node; returns the entries written by ``pushes``
    (followers' homes)."""
    written = store.push_many(own + pushes)[len(own) :]
    return sum(
        n * len(entries) for n, (_, entries) in zip(written, pushes, strict=True)
    )


def fanout_chunk(
    deps: Deps, tweet_id: int, author_id: int, after: int, upto: int
) -> int:
    """Push a tweet to one slice of a big follower list, with the author's
    newer tweets that have committed meanwhile (a burst): the slice's keys are
    then read and written once for all of them, and the chunks of those newer
    tweets for the same slice find their work done (``_RECENT``)."""
    span = (author_id, after, upto)
    if _RECENT.covers(span, tweet_id):
        return 0  # went out, or is going out, with an earlier tweet
    with _RECENT.claim(span, tweet_id):  # one push per slice at a time
        if _RECENT.covers(span, tweet_id):
            return 0
        return _push_burst(deps, span, tweet_id)


def _push_burst(deps: Deps, span: tuple[int, int, int], tweet_id: int) -> int:
    author_id, after, upto = span
    store = deps.timelines.store
    limit = min(BURST_MAX, store.TRIM_SLACK)
    # From the oldest tweet still waiting for this slice, so that no later
    # push puts an older tweet below newer ones (past the store's fast path).
    rows = _tweets_from(author_id, _RECENT.oldest_waiting(span, tweet_id), limit)
    if len(rows) == limit and rows[-1] < tweet_id:
        rows = _tweets_from(author_id, tweet_id, limit)  # ours first
    tweet_ids = [t for t in rows if not _RECENT.covers(span, t)]
    if not tweet_ids:
        return 0  # deleted before we got to it
    _RECENT.begin(span, tweet_ids)
    try:
        followers = deps.timelines.follower_ids(author_id, after=after, upto=upto)
        keys = [store.home_key(f) for f in followers]
        written = store.push(keys, [(t, author_id) for t in tweet_ids])
    except BaseException:
        _RECENT.end(span, tweet_ids, done=False)
        raise
    _RECENT.end(span, tweet_ids, done=True)
    metrics.FANOUT_ENTRIES.inc(written * len(tweet_ids))
    for t in tweet_ids:
        _observe_lag(t)
    return written


def _tweets_from(author_id: int, first: int, limit: int) -> list[int]:
    # Hand-written: every chunk of a big fan-out runs it, and building the
    # query as a peewee chain costs several times the client CPU of running it.
    rows = db.fetchall(
        "SELECT id FROM tweets WHERE author_id = %s AND id >= %s ORDER BY id LIMIT %s",
        (author_id, first, limit),
    )
    return [r.id for r in rows]


BURST_MAX = 32  # tweets per chunk push (also at most the store's slack)


# Why: docs/design.md#fan-out-batches-and-repeated-chunks
class RecentSpans:
    """Which tweets this process pushed, or is pushing, to which follower slices."""

    def __init__(self, spans: int = 4096, per_span: int = 256):
        self._spans: OrderedDict[tuple, set[int]] = OrderedDict()
        self._inflight: dict[tuple, set[int]] = {}
        self._waiting: dict[tuple, list[int]] = {}
        self._claims: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self._max_spans, self._per_span = spans, per_span

    @contextmanager
    def claim(self, span: tuple, tweet_id: int):
        """Serialize this process's pushes to one slice (see ``oldest_waiting``)."""
        # Waiters are not served in order, so the one that gets the slice
        # pushes from the oldest waiting tweet on.
        with self._lock:
            claim = self._claims.setdefault(span, threading.Lock())
            if len(self._claims) > 2 * self._max_spans:
                for other, held in list(self._claims.items()):
                    if other != span and not held.locked():
                        del self._claims[other]
            self._waiting.setdefault(span, []).append(tweet_id)
        try:
            with claim:
                yield
        finally:
            with self._lock:
                waiting = self._waiting[span]
                waiting.remove(tweet_id)
                if not waiting:
                    del self._waiting[span]

    def oldest_waiting(self, span: tuple, tweet_id: int) -> int:
        """The oldest tweet (ours included) whose chunk waits for this slice
        and that is not pushed yet."""
        with self._lock:
            done = self._spans.get(span, ())
            ids = [t for t in self._waiting.get(span, ()) if t not in done]
            return min([tweet_id, *ids])

    def covers(self, span: tuple, tweet_id: int) -> bool:
        with self._lock:
            done = self._spans.get(span, ())
            going = self._inflight.get(span, ())
            return tweet_id in done or tweet_id in going

    def begin(self, span: tuple, tweet_ids: list[int]) -> None:
        with self._lock:
            self._inflight[span] = set(tweet_ids)  # one push per span: claim()

    def end(self, span: tuple, tweet_ids: list[int], done: bool) -> None:
        with self._lock:
            self._inflight.pop(span, None)
            if not done:
                return
            known = self._spans.pop(span, set())
            known.update(tweet_ids)
            if len(known) > self._per_span:
                known = set(sorted(known)[-self._per_span :])
            self._spans[span] = known
            while len(self._spans) > self._max_spans:
                self._spans.popitem(last=False)


_RECENT = RecentSpans()


def remove_tweets(deps: Deps, entries: list[list[int]]) -> None:
    """Drop deleted tweets from the homes of their authors' followers."""
    tl = deps.timelines
    by_author: dict[int, list[int]] = {}
    for tweet_id, author_id in entries:
        by_author.setdefault(author_id, []).append(tweet_id)
    for author_id, tweet_ids in by_author.items():
        tl.remove_own(author_id, tweet_ids)
        keys = [tl.store.home_key(f) for f in tl.follower_ids(author_id)]
        tl.store.remove_ids(keys, tweet_ids)


def backfill_follow(deps: Deps, follower_id: int, followee_id: int) -> int:
    """Copy a new followee's recent tweets into the follower's home."""
    tl = deps.timelines
    still = (
        Follow.select()
        .where(Follow.follower == follower_id, Follow.followee == followee_id)
        .exists()
    )
    if not still or tl.author_is_pulled(followee_id):
        return 0
    return tl.push_to_followers([follower_id], tl.recent_entries(followee_id))


def repush_author(deps: Deps, author_id: int) -> int:
    """An author fell below the threshold: push their recent tweets to followers."""
    tl = deps.timelines
    forget_social(deps, author_id)
    if tl.author_is_pulled(author_id):
        return 0
    entries = tl.recent_entries(author_id)
    if not entries:
        return 0
    written, after = 0, 0
    while True:
        chunk = tl.followers(
            author_id, after=after, limit=deps.settings.fanout_chunk_size
        )
        if not chunk:
            return written
        written += tl.push_to_followers([f for f, _ in chunk], entries)
        after = chunk[-1][1]


def purge_user(deps: Deps, user_id: int, follower_ids: list[int]) -> None:
    """A deleted account's entries leave its former followers' homes."""
    store = deps.timelines.store
    store.remove_authors([store.home_key(f) for f in follower_ids], [user_id])
    deps.timelines.account_deleted(user_id)
    if deps.timelines.cache is not None:  # it may have been pulled by them
        deps.timelines.cache.social_changed(*follower_ids)


def forget_social(deps: Deps, author_id: int) -> None:
    """Whether the author is pulled changed: every follower's cached list of
    pulled authors goes (each reloads it on their next read)."""
    tl, after = deps.timelines, 0
    while tl.cache is not None:
        chunk = tl.followers(
            author_id, after=after, limit=deps.settings.fanout_chunk_size
        )
        if not chunk:
            return
        tl.cache.social_changed(*(f for f, _ in chunk))
        after = chunk[-1][1]
