"""Fan-out rate and lag, watched in Redis: commit -> in the last follower's home.

Tweets are posted through the API as a probe author (a pushed account with an
exact follower count). A small Lua script of the bench's own reports which
follower home keys still lack the tweet ids; while many are pending only a
random sample is checked, so the watching costs Redis little.
"""

from __future__ import annotations

import os
import random
import statistics
import time

from bench import infra, meters
from bench.client import Api
from bench.world import WORKER_PROCESSES, World
from core import ids
from core.keys import Keys
from core.redis_client import Script, execute
from core.timeline_store import TimelineStore, encode, pack, pack_ids

_MISSING = r"""
local want, n = {}, 0
for p = 1, #ARGV[1], 8 do want[string.sub(ARGV[1], p, p + 7)] = true; n = n + 1 end
local scan, slack = tonumber(ARGV[2]), tonumber(ARGV[3])
local missing = {}
for k = 1, #KEYS do
  -- one read: header, free slots, the newest `scan` entries (the layout of
  -- core.timeline_store; a key with more free slots than slack is read again)
  local got = redis.call('GETRANGE', KEYS[k], 0, 16 * (1 + slack + scan) - 1)
  local start = 17
  if #got >= 16 then
    local _, free = struct.unpack('>I4>I4', got, 9)
    start = 17 + free * 16
    if free > slack then
      got = redis.call('GETRANGE', KEYS[k], 0, 16 * (1 + free + scan) - 1)
    end
  end
  local found = 0
  for i = start, math.min(#got, start + 16 * scan - 1), 16 do
    if want[string.sub(got, i, i + 7)] then
      found = found + 1
      if found == n then break end
    end
  end
  if found < n then missing[#missing + 1] = k end
end
return missing
"""
POLL_S = 0.005
SAMPLE = 48
CHECK_BATCH = 2000  # keys per script call: keeps each call short for Redis
LAG_BUDGET_S = 60.0  # per follower count
BURST_BUDGET_S = 30.0  # expected length of the fan-out rate burst


class Watcher:
    def __init__(self, world: World):
        self.world = world
        self.script = world.store.redis.register_script(_MISSING)
        # a cluster runs a script on one slot: one call per key, per-node pipelines
        self.per_key = Script(world.store.redis, _MISSING)
        self.cluster = hasattr(world.store.redis, "get_nodes")
        self.slack = world.store.TRIM_SLACK
        self.rng = random.Random(7)
        self.stats = {"sample_checks": 0, "key_checks": 0}

    def keys_of(self, probe: int) -> list[str]:
        data, store = self.world.data, self.world.store
        return [store.home_key(data.user_ids[f]) for f in data.followers(probe)]

    def _missing(self, keys: list[str], blob: bytes, scan: int) -> list[str]:
        out = []
        self.stats["key_checks"] += len(keys)
        for start in range(0, len(keys), CHECK_BATCH):
            batch = keys[start : start + CHECK_BATCH]
            args = [blob, scan, self.slack]
            if self.cluster:
                found = execute(
                    self.world.store.redis, [(self.per_key, k, args) for k in batch]
                )
                out += [key for key, gone in zip(batch, found, strict=True) if gone]
                continue
            found = self.script(keys=batch, args=args)
            out += [batch[i - 1] for i in found]
        return out

    def wait(
        self,
        keys: list[str],
        tweet_ids: list[int],
        timeout_s: float,
        poll_s: float = POLL_S,
    ) -> float:
        """Wall time (time.time) by which every key holds every id (to
        ``poll_s``: a cost measurement polls rarely, its checks cost Redis)."""
        blob, scan = pack_ids(tweet_ids), len(tweet_ids) + 16
        pending = list(keys)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(pending) > SAMPLE * 4:
                sample = self.rng.sample(pending, SAMPLE)
                self.stats["sample_checks"] += 1
                if self._missing(sample, blob, scan):
                    time.sleep(poll_s)
                    continue
            pending = self._missing(pending, blob, scan)
            if not pending:
                return time.time()
            time.sleep(poll_s)
        raise RuntimeError(
            f"fan-out incomplete after {timeout_s}s: {len(pending)} left"
        )


def burst_size(world: World, one_tweet_s: float) -> int:
    """The profile's burst, fewer tweets when one takes long (bounded run time)."""
    return max(3, min(world.profile.fanout_burst, int(BURST_BUDGET_S / one_tweet_s)))


def rate(world: World, burst: int) -> dict:
    """A burst of tweets by the biggest probe: entries per second per process.

    Posted one after the other through the API; the watcher starts when the
    last post is answered and reports when every follower's home holds every
    tweet. The details also give the store's own rate for single-tweet pushes
    (``push_rate``), which no batching of a burst helps.
    """
    probe = world.data.probes[-1]
    watcher = Watcher(world)
    keys = watcher.keys_of(probe)
    worker = world.services["worker"]
    nodes = meters.redis_meters(world.store.redis)

    def redis_cpu() -> dict:
        return {name: sum(read().values()) for name, read in nodes.items()}

    api = Api(world.ports["api"])
    cpu0, redis0 = worker.cpu_seconds(), redis_cpu()
    try:
        posted = [
            api.tweet(world.tokens[probe], f"fan-out burst {k}") for k in range(burst)
        ]
    finally:
        api.close()
    posted_at = time.time()
    done = watcher.wait(keys, posted, timeout_s=600)
    elapsed = done - ids.timestamp_of(posted[0])
    entries = len(keys) * len(posted)
    cpu = worker.cpu_seconds() - cpu0
    redis_used = meters.used(redis0, redis_cpu())
    # Reported alongside, never instead: the store alone, one tweet per push
    # (no burst to batch), in this process, into as many full keys.
    single = push_rate(tweets=40, followers=len(keys))
    return {
        "rate": entries / elapsed / WORKER_PROCESSES,
        "entries": entries,
        "followers": len(keys),
        "tweets": len(posted),
        "seconds": round(elapsed, 3),
        # first commit -> last post answered (the watcher starts then)
        "posting_seconds": round(posted_at - ids.timestamp_of(posted[0]), 3),
        "watcher": watcher.stats,
        "worker_processes": WORKER_PROCESSES,
        "worker_cpu_cores": round(cpu / elapsed, 2),
        "redis_cpu_cores": round(redis_used / elapsed, 2),
        "redis_cpu_s_by_node": {
            name: round(v - redis0[name], 3) for name, v in redis_cpu().items()
        },
        "store_single_tweet_pushes": {
            k: single[k] for k in ("rate", "entries", "seconds", "slowest_push_s")
        },
    }


def lag(world: World) -> dict[int, dict]:
    """Commit (the id's timestamp) to the last follower, one tweet at a time.

    Each follower count gets ``lag_samples`` tweets or LAG_BUDGET_S, whichever
    ends first (a slow fan-out still finishes the run).
    """
    watcher = Watcher(world)
    api = Api(world.ports["api"])
    out = {}
    try:
        for probe in world.data.probes:
            keys = watcher.keys_of(probe)
            lags: list[float] = []
            started = time.monotonic()
            while len(lags) < world.profile.lag_samples and (
                time.monotonic() - started < LAG_BUDGET_S or len(lags) < 3
            ):
                tweet_id = api.tweet(world.tokens[probe], f"lag probe {len(lags)}")
                done = watcher.wait(keys, [tweet_id], timeout_s=120)
                lags.append(done - ids.timestamp_of(tweet_id))
                time.sleep(0.05)
            out[len(keys)] = summary(lags)
    finally:
        api.close()
    return out


def summary(lags: list[float]) -> dict:
    ordered = sorted(lags)
    return {
        "samples": len(ordered),
        "p50": round(statistics.median(ordered), 4),
        # nearest rank: with fewer than 100 samples this is the maximum
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }


# ----------------------------------------------------------- in-process figure
def push_rate(
    tweets: int = 40,
    followers: int = 10_000,
    cap: int = 800,
    shuffle: int = 1,
    seed: int = 1,
) -> dict:
    """TimelineStore.push alone: ``tweets`` single-tweet pushes into ``followers``
    full home keys (``cap`` entries and the free slots a rebuild leaves), as the
    fan-out of a 10k-follower author does them, minus Postgres and RabbitMQ.

    ``shuffle`` > 1 pushes the tweets in an order shuffled within groups of that
    size (concurrent worker threads deliver a burst slightly out of order). The
    keys live under a private prefix in the bench's Redis database and are
    deleted at the end. 40 tweets use up the 32 free slots once, so the figure
    includes one rewrite (trim) of every key.
    """
    client = infra.redis_client(infra.Names(f"micro{os.getpid()}"))
    prefix = f"twbench:micro{os.getpid()}:"
    store = TimelineStore(client, Keys(prefix), cap=cap, home_ttl_s=3600)
    base = ids.id_at(time.time() - 86_400)
    old = [(base + 4096 * (cap - k), 1 + k % 50) for k in range(cap)]
    value = encode(old[-1][0], pack(old), store.TRIM_SLACK)
    keys = [store.home_key(100_000 + f) for f in range(followers)]
    fresh = [base + 4096 * (cap + 1 + k) for k in range(tweets)]
    rng = random.Random(seed)
    order = []
    for start in range(0, tweets, shuffle):
        group = fresh[start : start + shuffle]
        rng.shuffle(group)
        order += group
    try:
        pipe = client.pipeline(transaction=False)
        for n, key in enumerate(keys, 1):
            pipe.set(key, value, ex=3600)
            if n % 500 == 0:
                pipe.execute()
        pipe.execute()
        times = []
        for tweet_id in order:
            started = time.perf_counter()
            written = store.push(keys, [(tweet_id, 7)])
            times.append(time.perf_counter() - started)
            assert written == followers, written
        sample = store.read(rng.sample(keys, 20))
        want = sorted(fresh + [e[0] for e in old], reverse=True)
        for timeline in sample:
            got = [e[0] for e in timeline.entries()]
            assert got == want[: len(got)] and len(got) >= cap, "wrong timeline"
    finally:
        infra.delete_prefix(client, prefix)
    total = sum(times)
    return {
        "rate": followers * tweets / total,
        "entries": followers * tweets,
        "seconds": round(total, 3),
        "slowest_push_s": round(max(times), 4),
        "fastest_push_s": round(min(times), 4),
        "shuffle": shuffle,
        "push_ms": [round(t * 1000) for t in times],
    }


def main() -> None:
    """``python -m bench.fanout [tweets] [shuffle]``: push_rate between two
    redis-benchmark ZADD baselines (same command as the full run's)."""
    import sys

    from bench import baselines

    tweets = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    shuffle = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    names = infra.Names(f"micro{os.getpid()}")
    before = baselines.zadd_rate(names, 1_000_000)["rate"]
    pushed = push_rate(tweets=tweets, shuffle=shuffle)
    after = baselines.zadd_rate(names, 1_000_000)["rate"]
    zadd = (before + after) / 2
    print(
        f"push: {pushed['rate']:,.0f} entries/s ({pushed})\n"
        f"ZADD -P 16: {before:,.0f} before, {after:,.0f} after;"
        f" ratio {pushed['rate'] / zadd:.3f}"
    )


if __name__ == "__main__":
    main()
