"""Fan-out lag under sustained load: open-loop posting at fixed rates.

Posts by Zipf-ranked authors (s=1) go out at a fixed rate for ``lag_s``
(``bench.pyload`` open loop: latency from the scheduled time, no coordinated
omission). A tracker polls Postgres for the new tweets, samples up to
TRACKED_PER_S of them a second, and watches each sampled tweet's followers'
home keys in Redis until the last one holds it: lag = the id's timestamp
(minted just before the INSERT) to that moment. Rates step up until the first
that fails: lag p99 over 5 s, a posting rate not sustained (under 95 % of
the offered rate) or more than 1 % failed posts. Then a 2x burst of the last
good rate, and how long its backlog takes to drain.
"""

from __future__ import annotations

import threading
import time

import psycopg2

from bench import costs, load, synth, writes
from bench.fanout import Watcher
from bench.load import Request
from bench.synth import Cohorts
from bench.world import World
from core import ids
from core.timeline_store import pack_ids

TRACKED_PER_S = 25
POLL_S = 0.02
SCAN = 64  # entries of a home checked from the newest
SETTLE_S = 30.0  # after posting stops, how long sampled tweets may still take


class Tracker(threading.Thread):
    def __init__(self, w: World, followers: dict[int, list[str]], every: int):
        super().__init__(daemon=True)
        self.w, self.followers, self.every = w, followers, max(1, every)
        self.watcher = Watcher(w)
        self.pending: dict[int, list[str]] = {}
        self.lags: list[float] = []
        self.seen = 0
        self.stopping = threading.Event()
        self.abandon = threading.Event()
        self.error: str | None = None
        conn = psycopg2.connect(w.settings.database_dsn)
        conn.autocommit = True
        self.db = conn
        with conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM tweets")
            self.last_id = cur.fetchone()[0]

    def _new_tweets(self) -> None:
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT id, author_id FROM tweets WHERE id > %s ORDER BY id LIMIT 5000",
                (self.last_id,),
            )
            rows = cur.fetchall()
        for tweet_id, author_id in rows:
            self.last_id = tweet_id
            self.seen += 1
            keys = self.followers.get(author_id)
            if keys and self.seen % self.every == 0:
                self.pending[tweet_id] = keys

    def _check(self) -> None:
        now = time.time()
        for tweet_id, keys in list(self.pending.items()):
            missing = self.watcher._missing(keys, pack_ids([tweet_id]), SCAN)
            if missing:
                self.pending[tweet_id] = missing
            else:
                del self.pending[tweet_id]
                self.lags.append(now - ids.timestamp_of(tweet_id))

    def run(self) -> None:
        try:
            while not self.abandon.is_set() and (
                not self.stopping.is_set() or self.pending
            ):
                self._new_tweets()
                self._check()
                time.sleep(POLL_S)
        except Exception as ex:  # reported by finish()
            self.error = f"{type(ex).__name__}: {ex}"

    def finish(self, settle_s: float) -> dict:
        """Stop taking new tweets once posting is over; wait for the pending."""
        time.sleep(POLL_S * 5)  # the last posts' commits
        self.stopping.set()
        self.join(settle_s)
        self.abandon.set()
        self.join(10)
        undelivered = len(self.pending)
        self.db.close()
        if self.error:
            raise RuntimeError(f"lag tracker failed: {self.error}")
        lags = sorted(self.lags) + [float("inf")] * undelivered
        return summary(lags, undelivered)


def summary(lags: list[float], undelivered: int) -> dict:
    if not lags:
        return {"samples": 0, "p50": None, "p99": None, "max": None, "undelivered": 0}

    def at(q: float):
        v = lags[min(len(lags) - 1, int(q * len(lags)))]
        return None if v == float("inf") else round(v, 3)

    return {
        "samples": len(lags),
        "p50": at(0.5),
        "p99": at(0.99),
        "max": at(1.0),
        "undelivered": undelivered,
    }


def _followers(w: World, cohorts: Cohorts) -> dict[int, list[str]]:
    """Posters' active followers' home keys, by the poster's user id."""
    data = w.data
    return {
        data.user_ids[a]: [
            w.store.home_key(data.user_ids[f])
            for f in data.followers(a)
            if f not in cohorts.inactive
        ]
        for a in cohorts.posters
    }


def _requests(w: World, cohorts: Cohorts, count: int):
    authors = synth.zipf_posts(cohorts.posters, count, seed=11)
    requests = [
        Request(
            "POST",
            "/tweet/create",
            w.tokens[a],
            writes._body({"tweet_content": f"sustained load {k} by {a}"}),
        )
        for k, a in enumerate(authors)
    ]
    return load.write_requests(w.workdir, "sustained", requests)


def step(w: World, path, followers, rate: float, seconds: float) -> dict:
    """``seconds`` of posting at ``rate``; lag of the sampled tweets, CPU by tier."""
    writes.drain(w, timeout_s=300)
    tracker = Tracker(w, followers, every=round(rate / TRACKED_PER_S))
    tracker.start()
    msgs0 = costs.worker_messages(w)
    failure = generator_error = None
    try:
        m = load.open_loop(w.ports["api"], path, seconds, rate, costs.all_meters(w))
    except RuntimeError as ex:  # the generator gave up: the API fell behind
        m, failure = None, "the API fell behind: answers came over 30 s late"
        generator_error = str(ex)[-300:]
    ended = time.monotonic()
    lag = tracker.finish(SETTLE_S)
    delivered_s = time.monotonic() - ended
    drained = writes.drain(w, timeout_s=300)
    out = {
        "offered_rate": rate,
        "seconds": seconds,
        "lag_s": lag,
        "settled_after_posting_s": round(delivered_s, 2),
        "drain": drained,
    }
    if generator_error:
        out["generator_error"] = generator_error
    if m is not None:
        posted = m.raw["requests"]
        out.update(
            achieved_rate=round(m.rate, 1),
            errors=m.errors,
            post_latency_ms=costs._latency(m),
            cpu_cores=m.summary()["cpu_cores"],
            cpu_cores_by_tier={
                t: round(v / m.seconds, 3) for t, v in costs.by_tier(m.cpu_s).items()
            },
            messages_per_post=round(
                (costs.worker_messages(w) - msgs0) / max(1, posted), 3
            ),
        )
        failure = _failure(out, w.profile.lag_limit_s)
    out["ok"] = failure is None
    out["failure"] = failure
    return out


def _failure(out: dict, limit_s: float) -> str | None:
    if out["achieved_rate"] < 0.95 * out["offered_rate"]:
        return f"posting rate not sustained ({out['achieved_rate']}/s)"
    if out["errors"] > 0.01 * out["achieved_rate"] * out["seconds"]:
        return f"{out['errors']} failed posts"
    lag = out["lag_s"]
    if lag["samples"] == 0:
        return "no tweet sampled"
    if lag["p99"] is None or lag["p99"] > limit_s:
        return f"lag p99 {lag['p99']} s > {limit_s} s"
    return None


def sustained(w: World, cohorts: Cohorts, log) -> dict:
    p = w.profile
    followers = _followers(w, cohorts)
    top = max(p.lag_rates) * 2
    path = _requests(w, cohorts, int(top * max(p.lag_s, p.burst_s)) + 10)
    steps, best = [], None
    for rate in p.lag_rates:
        log(f"sustained posting at {rate}/s for {p.lag_s}s")
        result = step(w, path, followers, rate, p.lag_s)
        log(
            f"  {rate}/s: achieved {result.get('achieved_rate')}, lag"
            f" p50/p99 {result['lag_s']['p50']}/{result['lag_s']['p99']} s,"
            f" cores {result.get('cpu_cores_by_tier')}"
            + (f" FAILED: {result['failure']}" if result["failure"] else "")
        )
        steps.append(result)
        if not result["ok"]:
            break
        best = result
    burst_rate = 2 * (best["offered_rate"] if best else p.lag_rates[0])
    log(f"burst: {burst_rate}/s for {p.burst_s}s, then the backlog drains")
    burst = step(w, path, followers, burst_rate, p.burst_s)
    burst["backlog_drain_s"] = round(
        burst["settled_after_posting_s"] + burst["drain"]["seconds"], 2
    )
    log(
        f"  burst lag p99 {burst['lag_s']['p99']} s, backlog drained"
        f" {burst['backlog_drain_s']} s after posting stopped"
    )
    return {
        "limit_s": p.lag_limit_s,
        "tracked_per_s": TRACKED_PER_S,
        "posters": len(cohorts.posters),
        "mean_active_followers_per_post": _mean_fanout(followers, cohorts, w),
        "steps": steps,
        "sustained_rate": best["offered_rate"] if best else 0,
        "at_sustained_rate": best,
        "burst": burst,
    }


def _mean_fanout(followers: dict, cohorts: Cohorts, w: World) -> float:
    posts = synth.zipf_posts(cohorts.posters, 5000, seed=11)
    uid = w.data.user_ids
    return round(sum(len(followers[uid[a]]) for a in posts) / len(posts), 1)
