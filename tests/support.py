"""Test helpers that tests import directly (conftest holds only fixtures)."""

from __future__ import annotations

import os

import redis

RUN_ID = str(os.getpid())
REDIS_PREFIX = f"twtest:{RUN_ID}:"


def clear_redis_prefix(client: redis.Redis, prefix: str = REDIS_PREFIX) -> None:
    """Delete this run's keys only: other runs share the Redis database."""
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)
