"""A realistic social graph and tweet history, deterministic from a seed.

Users 0..B-1 are the big accounts (followed by a share of everyone, above the
fan-out threshold, so home reads pull them); the next ones are the probes (pushed
authors with an exact follower count, for fan-out rate and lag); the rest are
regular users whose popularity follows a power law (Zipf, s=1) and who follow a
log-normal number of them. Ids are Snowflake ids of a fixed past window, so the
same seed gives the same rows on every run and new tweets sort after them.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field

from bench.config import Profile
from core import ids

LOADER_NODE = ids.MAX_NODE  # servers lease their node ids; the loader owns this one
WINDOW_END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: every row is older
TWEET_WINDOW_MS = 30 * 24 * 3600 * 1000
USER_WINDOW_MS = 400 * 24 * 3600 * 1000
PROBE_TWEETS = 20
RETWEET_SHARE, REPLY_SHARE = 0.04, 0.10
_VOCABULARY = (
    "time people year way day thing world life hand part child eye place week case"
    " point number group problem fact today build ship deploy coffee music game team"
    " city night story idea news photo launch thread update release bench cache"
    " queue stream redis postgres python falcon timeline follow tweet morning rain"
    " sun weekend travel book movie football recipe garden code review bug fix"
)
WORDS = _VOCABULARY.split()


@dataclass
class Dataset:
    profile: Profile
    seed: int
    user_ids: list[int]
    usernames: list[str]
    followees: list[list[int]]  # by user index
    big: list[int]  # user indices
    probes: list[int]
    # (id, author index, reply_to id, retweet_of id, content), oldest first
    tweets: list[tuple[int, int, int | None, int | None, str]]
    likes: list[tuple[int, int]]  # (tweet id, user index)
    _followers: list[list[int]] = field(default_factory=list, repr=False)

    def followers(self, index: int) -> list[int]:
        """Indices of the users following user ``index``, ascending."""
        if not self._followers:
            self._followers = [[] for _ in self.user_ids]
            for u, fs in enumerate(self.followees):
                for f in fs:
                    self._followers[f].append(u)
        return self._followers[index]

    def regular(self) -> range:
        return range(len(self.big) + len(self.probes), len(self.user_ids))


def snowflake(ms: int, seq: int) -> int:
    return (
        ((ms - ids.EPOCH_MS) << (ids.NODE_BITS + ids.SEQUENCE_BITS))
        | (LOADER_NODE << ids.SEQUENCE_BITS)
        | seq
    )


def ids_at(times_ms: list[int]) -> list[int]:
    """Snowflake ids for sorted millisecond times (sequence within a millisecond)."""
    out, last, seq = [], None, 0
    for ms in times_ms:
        seq = seq + 1 if ms == last else 0
        if seq > ids.MAX_SEQUENCE:
            raise ValueError("more than 4096 rows in one millisecond")
        last = ms
        out.append(snowflake(ms, seq))
    return out


def build(profile: Profile, seed: int) -> Dataset:
    rng = random.Random(seed)
    n = profile.users
    n_big, n_probe = len(profile.big_follow_share), len(profile.probe_followers)
    start = WINDOW_END_MS - TWEET_WINDOW_MS - USER_WINDOW_MS
    user_ids = ids_at(
        sorted(rng.randrange(start, start + USER_WINDOW_MS) for _ in range(n))
    )
    names = [f"big{i}" for i in range(n_big)]
    names += [f"probe{size}" for size in profile.probe_followers]
    names += [f"u{i:06d}" for i in range(len(names), n)]
    first_regular = n_big + n_probe
    followees = _follow_graph(rng, profile, n, first_regular)
    tweets = _tweets(rng, profile, n, first_regular)
    likes = _likes(rng, profile, tweets, first_regular, n)
    return Dataset(
        profile=profile,
        seed=seed,
        user_ids=user_ids,
        usernames=names,
        followees=followees,
        big=list(range(n_big)),
        probes=list(range(n_big, first_regular)),
        tweets=tweets,
        likes=likes,
    )


def _follow_graph(rng, profile: Profile, n: int, first_regular: int) -> list[list[int]]:
    regular = list(range(first_regular, n))
    ranks = regular[:]
    rng.shuffle(ranks)  # popularity rank of each regular user
    weights = [1.0 / (rank + 20) for rank in range(len(ranks))]
    cum = list(itertools.accumulate(weights))
    sigma = 0.9
    mu = math.log(profile.mean_following) - sigma * sigma / 2
    followees: list[list[int]] = []
    for u in range(n):
        want = min(len(regular) - 1, max(3, round(rng.lognormvariate(mu, sigma))))
        chosen: set[int] = set()
        while len(chosen) < want:
            for pick in rng.choices(ranks, cum_weights=cum, k=want - len(chosen)):
                if pick != u:
                    chosen.add(pick)
        if u >= len(profile.big_follow_share):
            chosen.update(
                b
                for b, share in enumerate(profile.big_follow_share)
                if rng.random() < share
            )
        followees.append(sorted(chosen))
    for offset, size in enumerate(profile.probe_followers):
        probe = len(profile.big_follow_share) + offset
        for follower in rng.sample(regular, size):
            followees[follower].append(probe)
    return [sorted(fs) for fs in followees]


def _tweets(rng, profile: Profile, n: int, first_regular: int):
    n_big = len(profile.big_follow_share)
    authors = [b for b in range(n_big) for _ in range(profile.big_tweets)]
    authors += [p for p in range(n_big, first_regular) for _ in range(PROBE_TWEETS)]
    activity = [rng.lognormvariate(0, 1.0) for _ in range(first_regular, n)]
    authors += rng.choices(
        range(first_regular, n), weights=activity, k=profile.tweets - len(authors)
    )
    rng.shuffle(authors)
    end = WINDOW_END_MS
    times = sorted(rng.randrange(end - TWEET_WINDOW_MS, end) for _ in authors)
    tweet_ids = ids_at(times)
    rows = []
    originals: list[int] = []  # indices of non-retweets, for retweet and reply targets
    retweeted: set[tuple[int, int]] = set()
    for i, (tweet_id, author) in enumerate(zip(tweet_ids, authors, strict=True)):
        roll = rng.random()
        if originals and roll < RETWEET_SHARE:
            target = originals[rng.randrange(len(originals))]
            target_id, target_author = tweet_ids[target], authors[target]
            if target_author != author and (author, target_id) not in retweeted:
                retweeted.add((author, target_id))
                rows.append((tweet_id, author, None, target_id, ""))
                continue
        reply_to = None
        if originals and roll < RETWEET_SHARE + REPLY_SHARE:
            reply_to = tweet_ids[originals[rng.randrange(len(originals))]]
        rows.append((tweet_id, author, reply_to, None, _content(rng)))
        originals.append(i)
    return rows


def _content(rng) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 24))
    return " ".join(words)[:280]


def _likes(rng, profile: Profile, tweets, first_regular: int, n: int):
    originals = [t[0] for t in tweets if t[3] is None]
    # recent tweets collect more likes
    cum = list(itertools.accumulate(range(1, len(originals) + 1)))
    seen: set[tuple[int, int]] = set()
    while len(seen) < profile.likes:
        tweet_id = originals[bisect.bisect_left(cum, rng.random() * cum[-1])]
        seen.add((tweet_id, rng.randrange(first_regular, n)))
    return sorted(seen)
