"""Cost curves: CPU per operation per tier, and latency, against the size that
drives the cost (pulled accounts followed, page depth, followers).

Each point is a closed-loop run (CPU per request per tier: API process tree,
Dramatiq worker, Postgres backends, Redis, RabbitMQ) and an open-loop run at a
light rate (latency without queueing), or for fan-outs the tweets' own lag.
"""

from __future__ import annotations

import statistics
import time
import urllib.request
from urllib.parse import quote

import psycopg2

from bench import appmetrics, load, meters, writes
from bench.client import Api
from bench.fanout import Watcher
from bench.load import Request
from bench.synth import Cohorts
from bench.world import World
from core import ids
from core.cursors import CursorCodec
from core.timeline_store import pack_ids

PAGE = 20
COST_POLL_S = 0.25  # the fan-out cost run's watcher
TIERS = ("api", "worker", "postgres", "redis", "rabbitmq")


def all_meters(w: World, target: str = "api") -> dict[str, meters.Meter]:
    return {**w.cpu_meters(target), "rabbitmq": meters.rabbitmq()}


def by_tier(cpu_s: dict[str, float]) -> dict[str, float]:
    """Meter readings folded into the tiers (every Redis node into "redis")."""
    out = dict.fromkeys(TIERS, 0.0)
    for name, seconds in cpu_s.items():
        tier = "api" if name == "server" else name.split("@")[0]
        if tier in out:
            out[tier] += seconds
    return out


def per_op_us(cpu_s: dict[str, float], ops: int) -> dict[str, float]:
    return {k: round(v / max(1, ops) * 1e6, 1) for k, v in by_tier(cpu_s).items()}


class Span:
    """CPU by meter over a block of code (not a generator run)."""

    def __init__(self, meter_map: dict[str, meters.Meter]):
        self.meters = meter_map
        self.cpu_s: dict[str, float] = {}
        self.seconds = 0.0

    def __enter__(self):
        self.before = {name: read() for name, read in self.meters.items()}
        self.machine0, self.t0 = meters.machine(), time.monotonic()
        return self

    def __exit__(self, *exc):
        self.cpu_s = {
            name: meters.used(self.before[name], read())
            for name, read in self.meters.items()
        }
        self.seconds = time.monotonic() - self.t0
        self.cpu_s["machine_busy"] = meters.machine()["busy"] - self.machine0["busy"]
        return False


def _latency(m: load.Measurement) -> dict:
    return {
        k: (None if v is None else round(v / 1000, 2))
        for k, v in m.raw["latency_us"].items()
    }


def _checked(m: load.Measurement, what: str) -> load.Measurement:
    if m.raw["requests"] == 0 or m.errors > 0.01 * m.raw["requests"]:
        raise RuntimeError(f"{what}: {m.errors} errors in {m.raw['requests']}")
    return m


def read_point(w: World, x: int, path, log) -> dict:
    """One size: closed loop (CPU per read, max rate), then open loop at a
    light rate (latency without queueing). Reads never touch the broker, and
    its meter counts the neighbours' traffic too: left out (0)."""
    p, port = w.profile, w.ports["api"]
    load.closed(w.wrk, port, path, p.warmup_s, p.connections, {})
    before = appmetrics.scrape(w.ports["metrics"])
    m = _checked(
        load.closed(w.wrk, port, path, p.read_s, p.connections, w.cpu_meters()),
        f"reads at {x}",
    )
    counters = appmetrics.delta(before, appmetrics.scrape(w.ports["metrics"]))
    rate = max(1.0, min(p.latency_rate, 0.3 * m.rate))
    lat = _checked(
        load.open_loop(port, path, p.latency_s, rate, w.cpu_meters()),
        f"read latency at {x}",
    )
    point = {
        "x": x,
        "rate": round(m.rate, 1),
        "cpu_us": per_op_us(m.cpu_s, m.raw["requests"]),
        "latency_ms": _latency(lat),
        "latency_rate": round(rate, 1),
        "closed_loop_latency_ms": _latency(m),
        "postgres_pages_per_read": round(
            counters["timeline_postgres_pages_total"] / m.raw["requests"], 3
        ),
        "cores": m.summary()["cpu_cores"],
    }
    log(
        f"  x={x}: {point['rate']} reads/s, cpu us {point['cpu_us']},"
        f" p50/p99 {point['latency_ms']['p50']}/{point['latency_ms']['p99']} ms"
    )
    return point


def home_vs_pulled(w: World, cohorts: Cohorts, log) -> dict:
    points = []
    for k, readers in cohorts.by_pulled.items():
        requests = [Request("GET", "/timeline/home", w.tokens[u]) for u in readers]
        path = load.write_requests(w.workdir, f"home_k{k}", requests)
        points.append(read_point(w, k, path, log))
    return {
        "x_label": "pulled (big) accounts the reader follows",
        "op": "GET /timeline/home (first page)",
        "points": points,
    }


def _homes(w: World, readers: list[int]) -> dict[int, list[int]]:
    """Each reader's whole home (Postgres's definition), newest first."""
    wanted = {a for u in readers for a in w.data.followees[u]} | set(readers)
    by_author: dict[int, list[int]] = {}
    for tweet_id, author, *_ in w.data.tweets:
        if author in wanted:
            by_author.setdefault(author, []).append(tweet_id)
    return {
        u: sorted(
            (t for a in [u, *w.data.followees[u]] for t in by_author.get(a, ())),
            reverse=True,
        )
        for u in readers
    }


def home_depth(w: World, cohorts: Cohorts, log) -> dict:
    """Pages past the cap: cursor pages whose ids all lie below what Redis holds."""
    codec = CursorCodec(w.settings.cursor_secret)
    cap = w.settings.timeline_cap
    homes = _homes(w, cohorts.deep_readers)
    points = []
    for depth in w.profile.depth_pages:
        requests = []
        for u, home in homes.items():
            last = home[cap + (depth - 1) * PAGE - 1]  # the previous page's last
            cursor = codec.encode("home", w.data.user_ids[u], last)
            requests.append(
                Request("GET", f"/timeline/home?cursor={quote(cursor)}", w.tokens[u])
            )
        path = load.write_requests(w.workdir, f"home_depth{depth}", requests)
        points.append(read_point(w, depth, path, log))
    return {
        "x_label": "page beyond the cap (Postgres pages)",
        "op": "GET /timeline/home?cursor= (below the Redis floor)",
        "points": points,
    }


def _warm(api: Api, token: str) -> None:
    """Each API process verifies the token once (RSA) and caches it."""
    for _ in range(6):
        api.call("POST", "/tweet/create", token, {})


def _discard_outbox(w: World) -> int:
    """The create curve's jobs: their fan-out is the fan-out curve's business,
    and 100k-follower fan-outs of every create would cost minutes."""
    conn = psycopg2.connect(w.settings.database_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET lock_timeout = '5s'")
            cur.execute(
                "DELETE FROM outbox WHERE id IN"
                " (SELECT id FROM outbox FOR UPDATE SKIP LOCKED)"
            )
            return cur.rowcount
    finally:
        conn.close()


def create_vs_followers(w: World, cohorts: Cohorts, log) -> dict:
    """POST /tweet/create by authors of every size, the worker paused: the
    request's own cost (commit + outbox row + the author's own keys). The
    broker is idle then (the relay is in the worker): no RabbitMQ meter."""
    p, api = w.profile, Api(w.ports["api"])
    points = []
    try:
        for followers, author in cohorts.probes.items():
            token = w.tokens[author]
            _warm(api, token)
            count = max(4, int(p.create_rate * p.create_s))
            requests = [
                Request(
                    "POST",
                    "/tweet/create",
                    token,
                    writes._body({"tweet_content": f"create curve {followers} {k}"}),
                )
                for k in range(count)
            ]
            path = load.write_requests(w.workdir, f"create_{followers}", requests)
            writes.drain(w)
            with w.services["worker"].paused():
                m = _checked(
                    load.open_loop(
                        w.ports["api"], path, p.create_s, p.create_rate, w.cpu_meters()
                    ),
                    f"creates by a {followers}-follower author",
                )
                discarded = _discard_outbox(w)
            point = {
                "x": followers,
                "rate": round(m.rate, 1),
                "cpu_us": per_op_us(m.cpu_s, m.raw["requests"]),
                "latency_ms": _latency(m),
                "outbox_rows_discarded": discarded,
            }
            log(f"  {followers} followers: cpu us {point['cpu_us']}")
            points.append(point)
    finally:
        api.close()
    return {
        "x_label": "author's followers",
        "op": "POST /tweet/create (worker paused: the request alone)",
        "points": points,
    }


def fanout_vs_followers(w: World, cohorts: Cohorts, create_us: dict, log) -> dict:
    """One tweet's fan-out: lag (one tweet at a time, commit -> last follower's
    home) and cost (tweets posted, then drained, CPU per tweet; the create's
    own cost from the create curve subtracted per tier)."""
    p, api, watcher = w.profile, Api(w.ports["api"]), Watcher(w)
    points = []
    try:
        for followers, author in cohorts.probes.items():
            token, keys = w.tokens[author], watcher.keys_of(author)
            writes.drain(w)
            lags = []
            for k in range(p.lag_tweets):
                tweet_id = api.tweet(token, f"fan-out lag {followers} {k}")
                done = watcher.wait(keys, [tweet_id], timeout_s=120)
                lags.append(done - ids.timestamp_of(tweet_id))
            writes.drain(w)
            msgs0 = worker_messages(w)
            # enough tweets that the meters' 10 ms ticks stay small per tweet
            count = max(p.fanout_tweets, min(p.fanout_tweets_max, 20_000 // followers))
            watcher.stats["key_checks"] = 0
            with Span(all_meters(w)) as span:
                posted = [
                    api.tweet(token, f"fan-out cost {followers} {k}")
                    for k in range(count)
                ]
                # the broker's ready count misses prefetched messages: wait
                # for the homes themselves, polling rarely
                watcher.wait(keys, posted, timeout_s=300, poll_s=COST_POLL_S)
                drained = writes.drain(w)
            total = per_op_us(span.cpu_s, len(posted))
            watching = _watcher_redis_us(w, watcher, keys, posted)
            total["redis"] = round(max(0.0, total["redis"] - watching / count), 1)
            own = {
                t: round(max(0.0, total[t] - create_us.get(t, 0.0)), 1) for t in TIERS
            }
            point = {
                "x": followers,
                "active_followers": len(keys),
                "cpu_us": own,
                "cpu_us_with_create": total,
                "watcher_redis_us_subtracted": round(watching / count, 1),
                "us_per_follower": {
                    t: round(v / max(1, len(keys)), 3) for t, v in own.items()
                },
                "lag_s": {
                    "p50": round(statistics.median(lags), 4),
                    "max": round(max(lags), 4),
                    "samples": len(lags),
                },
                "messages_per_tweet": round(
                    (worker_messages(w) - msgs0) / len(posted), 2
                ),
                "drain": drained,
            }
            log(
                f"  {followers} followers: lag p50 {point['lag_s']['p50']} s,"
                f" cpu us {own}"
            )
            points.append(point)
    finally:
        api.close()
    return {
        "x_label": "followers (all active)",
        "op": "fan-out of one tweet (chunked above FANOUT_CHUNK_SIZE)",
        "points": points,
    }


def _watcher_redis_us(w: World, watcher: Watcher, keys, posted) -> float:
    """Redis µs the watcher's key checks cost during a cost run: one more
    full pass over the same keys, measured, times the checks it made."""
    checks = watcher.stats["key_checks"]
    with Span(meters.redis_meters(w.store.redis)) as span:
        watcher._missing(keys, pack_ids(posted), len(posted) + 16)
    spent = sum(v for k, v in span.cpu_s.items() if k != "machine_busy")
    return spent / max(1, len(keys)) * checks * 1e6


def worker_messages(w: World) -> float:
    """Dramatiq messages processed so far (the worker's Prometheus counter)."""
    url = f"http://127.0.0.1:{w.ports['worker_metrics']}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dramatiq_messages_total")
    )
