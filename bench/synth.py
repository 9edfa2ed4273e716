"""The cost curves' world: a data set whose shape each curve can dial exactly.

Unlike ``bench.dataset`` (one realistic graph), every curve here needs users
with an exact property: readers who follow exactly k pulled accounts, a
reader whose home runs far past the cap, authors with exactly 10 ... 100k
followers, and a share of users inactive for longer than INACTIVE_DAYS. The
rest is a regular population (Zipf popularity, log-normal following), which
the sustained-load posting generator writes as.

User indices, in order: big (pulled) accounts, fan-out probes, deep authors
(whose tweets fill the deep readers' homes), then regular users. The big
accounts' ``follower_count`` is set above FANOUT_THRESHOLD after the load
(synthetic: only their cohort readers follow them by rows), so that the
threshold can sit above the largest probe and a 100k-follower author is
still pushed.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from bench import dataset
from bench.dataset import Dataset, ids_at


@dataclass(frozen=True)
class CurveProfile:
    name: str
    users: int
    mean_following: int  # regular users, log-normal around it
    active_share: float  # regular users who read within INACTIVE_DAYS
    regular_tweets: int  # history of the regular users
    big_accounts: int
    pulled_counts: tuple[int, ...]  # k: readers follow exactly k big accounts
    cohort_readers: int  # readers per k (and deep readers)
    probe_followers: tuple[int, ...]  # pushed authors with exact follower counts
    deep_authors: int
    deep_tweets: int  # per deep author
    depth_pages: tuple[int, ...]  # pages beyond the cap
    fanout_threshold: int
    big_follower_count: int  # synthetic, above the threshold
    timeline_cap: int
    # --- load ---------------------------------------------------------------
    connections: int
    warmup_s: float
    read_s: float  # closed loop per point (CPU per request)
    latency_rate: float  # open loop per point (latency at light load)
    latency_s: float
    fanout_tweets: int  # per follower count (cost: posted, then drained) ...
    fanout_tweets_max: int  # ... up to this many for small fan-outs
    lag_tweets: int  # per follower count, one at a time (commit -> last home)
    create_rate: float
    create_s: float
    lag_authors: int  # Zipf posters of the sustained-load run (one token each)
    lag_rates: tuple[float, ...]
    lag_s: float
    burst_s: float
    lag_limit_s: float = 5.0

    # what bench.world / infra.service_env read from a profile
    @property
    def readers(self) -> int:
        return self.cohort_readers

    @property
    def rounds(self) -> int:
        return 1


FULL = CurveProfile(
    name="curves",
    users=200_000,
    mean_following=20,
    active_share=0.6,
    regular_tweets=300_000,
    big_accounts=64,
    pulled_counts=(0, 1, 4, 16, 64),
    cohort_readers=200,
    probe_followers=(10, 100, 1_000, 10_000, 100_000),
    deep_authors=60,
    deep_tweets=80,
    depth_pages=(1, 4, 16, 64, 160),
    fanout_threshold=150_000,
    big_follower_count=1_000_000,
    timeline_cap=800,
    connections=16,
    warmup_s=2,
    read_s=5,
    latency_rate=40,
    latency_s=5,
    fanout_tweets=6,
    fanout_tweets_max=40,
    lag_tweets=3,
    create_rate=20,
    create_s=4,
    lag_authors=2_000,
    lag_rates=(50, 100, 200, 400, 800),
    lag_s=60,
    burst_s=15,
)

SMOKE = CurveProfile(
    name="curves-smoke",
    users=1_500,
    mean_following=10,
    active_share=0.7,
    regular_tweets=2_000,
    big_accounts=4,
    pulled_counts=(0, 1, 4),
    cohort_readers=8,
    probe_followers=(10, 100),
    deep_authors=6,
    deep_tweets=20,
    depth_pages=(1, 3),
    fanout_threshold=500,
    big_follower_count=5_000,
    timeline_cap=50,
    connections=4,
    warmup_s=0.5,
    read_s=1,
    latency_rate=20,
    latency_s=1,
    fanout_tweets=2,
    fanout_tweets_max=6,
    lag_tweets=2,
    create_rate=10,
    create_s=1,
    lag_authors=50,
    lag_rates=(5, 10),
    lag_s=3,
    burst_s=2,
)


@dataclass
class Cohorts:
    """The readers and authors each curve uses (user indices)."""

    by_pulled: dict[int, list[int]]  # k -> readers following exactly k big
    deep_readers: list[int]
    probes: dict[int, int]  # follower count -> author
    deep: list[int]  # deep authors
    posters: list[int]  # Zipf posters of the sustained run, by rank
    inactive: set[int]


def build(p: CurveProfile, seed: int) -> tuple[Dataset, Cohorts]:
    rng = random.Random(seed)
    n_fixed = p.big_accounts + len(p.probe_followers) + p.deep_authors
    if p.users - n_fixed < max(p.probe_followers) / p.active_share + 100:
        raise ValueError("too few users for the largest probe")
    big = list(range(p.big_accounts))
    probes = list(range(p.big_accounts, p.big_accounts + len(p.probe_followers)))
    deep = list(range(probes[-1] + 1, n_fixed))
    regular = list(range(n_fixed, p.users))
    followees = _graph(rng, p, regular)
    active = rng.sample(regular, round(p.active_share * len(regular)))
    inactive = set(regular) - set(active)
    free = iter(rng.sample(active, len(active)))  # distinct readers and posters
    by_pulled = {}
    for k in p.pulled_counts:
        by_pulled[k] = list(itertools.islice(free, p.cohort_readers))
        for u in by_pulled[k]:
            followees[u] = followees[u] | set(big[:k])
    deep_readers = list(itertools.islice(free, p.cohort_readers))
    for u in deep_readers:
        followees[u] = followees[u] | set(deep)
    posters = list(itertools.islice(free, p.lag_authors))
    for author, size in zip(probes, p.probe_followers, strict=True):
        for follower in rng.sample(active, size):
            followees[follower].add(author)
    tweets = _tweets(rng, p, big, probes, deep, regular)
    data = Dataset(
        profile=p,
        seed=seed,
        user_ids=ids_at(_user_times(rng, p.users)),
        usernames=[f"c{i:07d}" for i in range(p.users)],
        followees=[sorted(fs) for fs in followees],
        big=big,
        probes=probes,
        tweets=tweets,
        likes=[],
    )
    cohorts = Cohorts(
        by_pulled=by_pulled,
        deep_readers=deep_readers,
        probes=dict(zip(p.probe_followers, probes, strict=True)),
        deep=deep,
        posters=posters,
        inactive=inactive,
    )
    return data, cohorts


def _user_times(rng, n: int) -> list[int]:
    start = dataset.WINDOW_END_MS - dataset.TWEET_WINDOW_MS - dataset.USER_WINDOW_MS
    return sorted(
        rng.randrange(start, start + dataset.USER_WINDOW_MS) for _ in range(n)
    )


def _graph(rng, p: CurveProfile, regular: list[int]) -> list[set[int]]:
    """Regular users follow regular users: Zipf (s=1) popularity by a shuffled
    rank, a log-normal number of follows (sigma 0.9) around the mean."""
    ranks = regular[:]
    rng.shuffle(ranks)
    cum = list(itertools.accumulate(1.0 / (r + 20) for r in range(len(ranks))))
    sigma = 0.9
    mu = math.log(p.mean_following) - sigma * sigma / 2
    followees: list[set[int]] = [set() for _ in range(p.users)]
    for u in regular:
        want = min(len(regular) - 1, max(1, round(rng.lognormvariate(mu, sigma))))
        chosen = followees[u]
        while len(chosen) < want:
            chosen.update(rng.choices(ranks, cum_weights=cum, k=want - len(chosen)))
            chosen.discard(u)
    return followees


def _tweets(rng, p: CurveProfile, big, probes, deep, regular):
    """Every author's history, oldest first: big accounts a little more than
    the cap (their user keys are full), deep authors enough that the deep
    readers' homes run ``max(depth_pages)`` pages past the cap."""
    authors = [b for b in big for _ in range(p.timeline_cap + 20)]
    authors += [a for a in probes for _ in range(5)]
    authors += [a for a in deep for _ in range(p.deep_tweets)]
    activity = [rng.lognormvariate(0, 1.0) for _ in regular]
    authors += rng.choices(regular, weights=activity, k=p.regular_tweets)
    rng.shuffle(authors)
    end = dataset.WINDOW_END_MS
    times = sorted(rng.randrange(end - dataset.TWEET_WINDOW_MS, end) for _ in authors)
    return [
        (tweet_id, author, None, None, dataset._content(rng))
        for tweet_id, author in zip(ids_at(times), authors, strict=True)
    ]


def zipf_posts(posters: list[int], count: int, seed: int) -> list[int]:
    """``count`` authors drawn with Zipf (s=1) weights over ``posters``' ranks."""
    rng = random.Random(seed)
    cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(posters))))
    return rng.choices(posters, cum_weights=cum, k=count)
