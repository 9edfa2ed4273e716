"""What the world occupies: Redis bytes by kind of key and per (active) user,
Postgres bytes per row. The capacity model scales these by users and tweets."""

from __future__ import annotations

import psycopg2

from bench.synth import Cohorts
from bench.world import World

BATCH = 1000


def _kind(key: bytes, prefix: str) -> str:
    """``tw:{u1}:home`` -> home; ``tw:{u1}:t:123`` -> t; ``tw:{n:x}:uid`` -> uid."""
    rest = key.decode()[len(prefix) :]
    if "}:" in rest:
        rest = rest.split("}:", 1)[1]
    return rest.split(":", 1)[0]


def redis_bytes(w: World) -> dict[str, dict]:
    """MEMORY USAGE of every key under the run's prefix, by kind (keys, bytes)."""
    client, prefix = w.store.redis, w.settings.redis_prefix
    kinds: dict[str, dict] = {}
    batch: list[bytes] = []

    def flush():
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(batch, pipe.execute(), strict=True):
            entry = kinds.setdefault(_kind(key, prefix), {"keys": 0, "bytes": 0})
            entry["keys"] += 1
            entry["bytes"] += size or 0
        batch.clear()

    for key in client.scan_iter(match=f"{prefix}*", count=2000):
        batch.append(key)
        if len(batch) >= BATCH:
            flush()
    flush()
    return kinds


def full_home_bytes(w: World, cohorts: Cohorts) -> float:
    """A home at the cap (the deep readers' homes are full)."""
    client = w.store.redis
    sizes = [
        client.memory_usage(w.store.home_key(w.data.user_ids[u]), samples=0) or 0
        for u in cohorts.deep_readers
    ]
    sizes = [s for s in sizes if s]
    return sum(sizes) / len(sizes) if sizes else 0.0


def postgres_bytes(w: World) -> dict[str, dict]:
    """Rows and total bytes (heap, indexes, TOAST) per table."""
    conn = psycopg2.connect(w.settings.database_dsn)
    out = {}
    try:
        with conn.cursor() as cur:
            for table in ("users", "follows", "tweets", "likes"):
                cur.execute(
                    f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
                )
                rows, size = cur.fetchone()
                out[table] = {
                    "rows": rows,
                    "bytes": size,
                    "bytes_per_row": round(size / rows, 1) if rows else None,
                }
    finally:
        conn.close()
    return out


def measure(w: World, cohorts: Cohorts) -> dict:
    kinds = redis_bytes(w)
    total = sum(k["bytes"] for k in kinds.values())
    users = len(w.data.user_ids)
    active = users - len(cohorts.inactive)
    homes = kinds.get("home", {"keys": 0, "bytes": 0})
    user_keys = kinds.get("utl", {"keys": 0, "bytes": 0})
    tweets_cached = kinds.get("t", {"keys": 0, "bytes": 0})
    return {
        "users": users,
        "active_users": active,
        "active_share": round(active / users, 3),
        "redis_total_bytes": total,
        "redis_bytes_per_active_user": round(total / active, 1),
        "redis_bytes_per_user": round(total / users, 1),
        "home_bytes_mean": round(homes["bytes"] / max(1, homes["keys"]), 1),
        "home_bytes_full": round(full_home_bytes(w, cohorts), 1),
        "user_timeline_bytes_mean": round(
            user_keys["bytes"] / max(1, user_keys["keys"]), 1
        ),
        "cached_tweet_bytes_mean": round(
            tweets_cached["bytes"] / max(1, tweets_cached["keys"]), 1
        ),
        "timeline_cap": w.settings.timeline_cap,
        "inactive_days": w.settings.inactive_days,
        "by_kind": kinds,
        "postgres": postgres_bytes(w),
    }
