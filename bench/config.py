"""The two run profiles: the full benchmark and the quick harness check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # --- data set ---------------------------------------------------------
    users: int
    tweets: int  # originals, replies and retweets
    likes: int
    mean_following: int  # follows per regular user (log-normal around it)
    big_follow_share: tuple[float, ...]  # share of users following each big account
    big_tweets: int  # tweets per big (pulled) account
    probe_followers: tuple[int, ...]  # pushed authors for fan-out rate and lag
    fanout_threshold: int
    timeline_cap: int
    readers: int  # users whose home timelines are read (one token each)
    # --- load ---------------------------------------------------------------
    connections: int  # closed-loop load: concurrent keep-alive connections
    warmup_s: float
    read_s: float  # per throughput measurement
    replay_s: float  # per replay of the reads' Redis round trips (bench/replay.py)
    rounds: int  # no-op / home / user rounds, interleaved against drift
    latency_s: float
    write_s: float  # tweet creates and logins
    insert_s: float  # baseline: single-row INSERTs
    zadd_requests: int  # baseline: redis-benchmark ZADDs
    fanout_burst: int  # tweets by the biggest probe for the fan-out rate
    lag_samples: int  # tweets per probe for fan-out lag
    hash_s: float  # baseline: argon2 hashes on one core


FULL = Profile(
    name="full",
    users=20_000,
    tweets=210_000,
    likes=300_000,
    mean_following=40,
    big_follow_share=(0.9, 0.8, 0.7, 0.64),
    big_tweets=400,
    probe_followers=(100, 1_000, 10_000),
    fanout_threshold=12_000,
    timeline_cap=800,
    readers=2_000,
    connections=16,
    warmup_s=3,
    read_s=12,
    replay_s=4,
    rounds=3,
    latency_s=15,
    write_s=12,
    insert_s=8,
    zadd_requests=1_000_000,
    fanout_burst=30,
    lag_samples=20,
    hash_s=4,
)

QUICK = Profile(
    name="quick",
    users=400,
    tweets=4_000,
    likes=2_000,
    mean_following=15,
    big_follow_share=(0.8, 0.6),
    big_tweets=60,
    probe_followers=(10, 30, 100),
    fanout_threshold=200,
    timeline_cap=50,
    readers=100,
    connections=8,
    warmup_s=0.5,
    read_s=2,
    replay_s=0.5,
    rounds=1,
    latency_s=2,
    write_s=2,
    insert_s=1,
    zadd_requests=20_000,
    fanout_burst=3,
    lag_samples=3,
    hash_s=0.5,
)
