"""Timeline maintenance performed by the workers (no Dramatiq in here).

Every function is idempotent: timeline writes are set-like merges keyed by tweet
id, so a redelivered or replayed message changes nothing. A tweet that no longer
exists is a job done, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core import db, ids, metrics
from core.container import Deps

ChunkSender = Callable[[int, int, int, int], None]


def _observe_lag(tweet_id: int) -> None:
    metrics.FANOUT_LAG.observe(max(0.0, time.time() - ids.timestamp_of(tweet_id)))


def fanout_tweet(
    deps: Deps, tweet_id: int, author_id: int, send_chunk: ChunkSender
) -> int:
    """Push a new tweet to followers' homes, or leave it to be pulled."""
    tl = deps.timelines
    row = db.fetchone(
        "SELECT u.follower_count FROM tweets t JOIN users u ON u.id = t.author_id"
        " WHERE t.id = %s",
        (tweet_id,),
    )
    if row is None:
        return 0  # deleted before we got to it
    tl.add_own(author_id, tweet_id)
    if row[0] >= tl.threshold:
        _observe_lag(tweet_id)
        return 0  # a big account: followers pull it at read time
    followers = tl.followers(author_id)
    chunk = deps.settings.fanout_chunk_size
    if len(followers) <= chunk:
        return _push(deps, tweet_id, author_id, [f for f, _ in followers])
    # Split big follower lists so each message stays short and a crash
    # redoes one chunk, not the whole fan-out. Bounds are follow ids.
    after = 0
    for start in range(0, len(followers), chunk):
        upto = followers[min(start + chunk, len(followers)) - 1][1]
        send_chunk(tweet_id, author_id, after, upto)
        after = upto
    return 0


def fanout_chunk(
    deps: Deps, tweet_id: int, author_id: int, after: int, upto: int
) -> int:
    if db.fetchone("SELECT 1 FROM tweets WHERE id = %s", (tweet_id,)) is None:
        return 0
    followers = deps.timelines.follower_ids(author_id, after=after, upto=upto)
    return _push(deps, tweet_id, author_id, followers)


def _push(deps: Deps, tweet_id: int, author_id: int, followers: list[int]) -> int:
    written = deps.timelines.push_to_followers(followers, [(tweet_id, author_id)])
    metrics.FANOUT_ENTRIES.inc(written)
    _observe_lag(tweet_id)
    return written


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
    still = db.fetchone(
        "SELECT 1 FROM follows WHERE follower_id = %s AND followee_id = %s",
        (follower_id, followee_id),
    )
    if still is None or tl.is_pulled(followee_id):
        return 0
    return tl.push_to_followers([follower_id], tl.recent_entries(followee_id))


def repush_author(deps: Deps, author_id: int) -> int:
    """An author fell below the threshold: push their recent tweets to followers."""
    tl = deps.timelines
    if tl.is_pulled(author_id):
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
    store.delete([store.home_key(user_id), store.user_key(user_id)])
