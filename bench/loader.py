"""Bulk-load a data set: COPY into the migrated schema, then fill Redis.

Triggers (counters, outbox notifications) and foreign-key checks are off for
the loading session only (``session_replication_role = replica``); the counters
they would keep are computed here and copied with the rows, and
:func:`check_counters` compares them with the aggregates. Home and user
timelines are materialized with ``core.timeline_store`` (its ``rebuild``, the
same call ``Timelines.rebuild`` makes), pipelined.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg2
import redis

from bench.dataset import Dataset, ids_at
from core import ids, timeline_store
from core.db import init_database
from core.keys import Keys
from core.settings import Settings
from core.timeline_store import TimelineStore
from core.timelines import HOME, USER, Timelines
from migrations import runner

FOLLOW_WINDOW_MS = 60 * 24 * 3600 * 1000
PIPELINE = 200  # rebuild calls per Redis round trip


def migrate(settings: Settings) -> None:
    database = init_database(settings)
    runner.migrate(log=lambda *_: None)
    database.close_all()


def _ts(snowflake: int) -> str:
    return datetime.fromtimestamp(ids.timestamp_of(snowflake), UTC).isoformat()


def _copy(cur, table: str, columns: str, lines: Iterable[str], timings) -> None:
    started = time.perf_counter()
    buf = io.StringIO()
    buf.writelines(lines)
    buf.seek(0)
    built = time.perf_counter()
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buf)
    timings[table] = (round(built - started, 2), round(time.perf_counter() - built, 2))


def _null(value) -> str:
    return r"\N" if value is None else str(value)


def load_postgres(data: Dataset, dsn: str, password_hash: str) -> dict:
    """COPY every row of ``data``; returns row counts and (build, copy) seconds."""
    n = len(data.user_ids)
    follower_count, tweet_count = [0] * n, [0] * n
    for fs in data.followees:
        for f in fs:
            follower_count[f] += 1
    like_count: dict[int, int] = {}
    retweet_count: dict[int, int] = {}
    for _, author, _, retweet_of, _ in data.tweets:
        tweet_count[author] += 1
        if retweet_of is not None:
            retweet_count[retweet_of] = retweet_count.get(retweet_of, 0) + 1
    for tweet_id, _ in data.likes:
        like_count[tweet_id] = like_count.get(tweet_id, 0) + 1
    uid = data.user_ids
    pairs = [(uid[u], uid[f]) for u, fs in enumerate(data.followees) for f in fs]
    # follows.id orders the follower lists; created_at keeps its default
    start = ids.timestamp_of(data.tweets[0][0]) * 1000 - FOLLOW_WINDOW_MS
    follow_ids = ids_at(
        [int(start + k * FOLLOW_WINDOW_MS // len(pairs)) for k in range(len(pairs))]
    )
    timings: dict[str, tuple] = {}
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            _copy(
                cur,
                "users",
                "id, username, email, password_hash, display_name, created_at,"
                " follower_count, following_count, tweet_count",
                (
                    f"{uid[i]}\t{name}\t{name}@bench.example\t{password_hash}\t"
                    f"{name.upper()}\t{_ts(uid[i])}\t{follower_count[i]}\t"
                    f"{len(data.followees[i])}\t{tweet_count[i]}\n"
                    for i, name in enumerate(data.usernames)
                ),
                timings,
            )
            _copy(
                cur,
                "follows",
                "follower_id, followee_id, id",
                (
                    f"{a}\t{b}\t{fid}\n"
                    for (a, b), fid in zip(pairs, follow_ids, strict=True)
                ),
                timings,
            )
            _copy(
                cur,
                "tweets",
                "id, author_id, content, created_at, reply_to_id, retweet_of_id,"
                " like_count, retweet_count",
                (
                    f"{t}\t{uid[a]}\t{content}\t{_ts(t)}\t{_null(reply)}\t"
                    f"{_null(rt)}\t{like_count.get(t, 0)}\t{retweet_count.get(t, 0)}\n"
                    for t, a, reply, rt, content in data.tweets
                ),
                timings,
            )
            _copy(
                cur,
                "likes",
                "tweet_id, user_id",
                (f"{t}\t{uid[u]}\n" for t, u in data.likes),
                timings,
            )
        conn.autocommit = True
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) users, follows, tweets, likes")
        timings["vacuum"] = round(time.perf_counter() - started, 2)
    finally:
        conn.close()
    return {
        "rows": {
            "users": n,
            "follows": len(pairs),
            "tweets": len(data.tweets),
            "likes": len(data.likes),
        },
        "seconds": timings,
    }


_COUNTER_CHECKS = (
    "SELECT count(*) FROM users u WHERE follower_count <>"
    " (SELECT count(*) FROM follows WHERE followee_id = u.id)"
    " OR following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)"
    " OR tweet_count <> (SELECT count(*) FROM tweets WHERE author_id = u.id)",
    "SELECT count(*) FROM tweets t WHERE like_count <>"
    " (SELECT count(*) FROM likes WHERE tweet_id = t.id) OR retweet_count <>"
    " (SELECT count(*) FROM tweets r WHERE r.retweet_of_id = t.id)",
)


def check_counters(dsn: str) -> int:
    """Rows whose counters disagree with the rows they count (0 when loaded right)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            bad = 0
            for sql in _COUNTER_CHECKS:
                cur.execute(sql)
                bad += cur.fetchone()[0]
            return bad
    finally:
        conn.close()


def timeline_blobs(data: Dataset, cap: int) -> tuple[list[bytes], list[bytes]]:
    """The bytes of every (home, user) key, from the oracle queries computed here."""
    by_author: list[list[int]] = [[] for _ in data.user_ids]
    packed: dict[int, bytes] = {}
    uid = data.user_ids
    for tweet_id, author, *_ in reversed(data.tweets):
        if len(by_author[author]) <= cap:
            by_author[author].append(tweet_id)
            packed[tweet_id] = timeline_store.pack([(tweet_id, uid[author])])

    def blob(newest_first: list[int]) -> bytes:
        # the newest cap entries, floored at the last one if more exist
        floor = newest_first[cap - 1] if len(newest_first) > cap else 0
        body = b"".join(map(packed.__getitem__, newest_first[:cap]))
        return timeline_store.encode(floor, body, free=timeline_store.slack_for(cap))

    homes = []
    for u, fs in enumerate(data.followees):
        # concatenated descending runs: timsort merges them in C
        merged = sorted(
            itertools.chain(by_author[u], *(by_author[f] for f in fs)), reverse=True
        )
        homes.append(blob(merged[: cap + 1]))
    return homes, [blob(ts) for ts in by_author]


def materialize(
    data: Dataset, client: redis.Redis, settings: Settings, check: int = 20
) -> dict[str, int]:
    """Write every user's home and user timeline key; returns key counts.

    Keys are SET directly (the Lua rebuild is Redis-bound: 35 s for 20k homes);
    ``check`` users' keys are rebuilt by ``Timelines.rebuild`` (Postgres oracle
    query, then ``TimelineStore.rebuild``) under scratch keys and must come out
    byte for byte the same.
    """
    cap, ttl = settings.timeline_cap, settings.home_ttl_s
    homes, users = timeline_blobs(data, cap)
    store = TimelineStore(client, Keys(settings.redis_prefix), cap, ttl)
    pipe = client.pipeline(transaction=False)
    for u, user_id in enumerate(data.user_ids):
        pipe.set(store.home_key(user_id), homes[u], ex=ttl)
        pipe.set(store.user_key(user_id), users[u], ex=ttl)
        if len(pipe) >= PIPELINE:
            pipe.execute()
    pipe.execute()
    database = init_database(settings)
    try:
        rebuilder = Timelines(store, settings.fanout_threshold)
        step = max(1, len(homes) // check)
        for u in range(0, len(homes), step):
            user_id = data.user_ids[u]
            for key, kind in (
                (store.home_key(user_id), HOME),
                (store.user_key(user_id), USER),
            ):
                scratch = f"{settings.redis_prefix}check:{key}"
                store.rebuild(scratch, rebuilder.snapshot(kind, user_id))
                if client.get(scratch) != client.get(key):
                    raise AssertionError(f"{key} differs from Timelines.rebuild")
                client.delete(scratch)
    finally:
        database.close_all()
    return {"home_keys": len(homes), "user_keys": len(users)}
