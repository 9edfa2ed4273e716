"""``python -m bench.capacity [curves.json] [capacity.md]``: the capacity model.

Turns the measured costs (CPU per operation per tier, bytes per key and row,
messages per post: bench/results/curves.json) into what 1M, 10M and 100M
daily active users need, under the assumptions listed in ASSUMPTIONS. The
document is generated, never edited by hand, so that it cannot drift from the
measurements: ``make bench-curves`` rewrites it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import orjson

from core.settings import PROJECT_ROOT

SCALES = (1_000_000, 10_000_000, 100_000_000)
DAY = 86_400
GIB = 2**30

# name -> (value, why). Every figure of the model follows from these and the run.
ASSUMPTIONS = {
    "home_reads_per_dau": (100, "home first pages per daily active user per day"),
    "user_reads_per_dau": (20, "user timeline pages per DAU per day"),
    "deep_read_share": (0.02, "home reads past the cap (Postgres), at depth 4"),
    "posts_per_dau": (3, "tweets, replies and retweets per DAU per day"),
    "peak_factor": (2.5, "peak over daily mean (Twitter 2012: 12k / 4.6k tweets/s)"),
    "pulled_per_reader": (6, "big (pulled) accounts an average reader follows"),
    "followers_per_post": (
        120,
        "followers of a post's author, pushed authors (Zipf authors, log-normal"
        " following, mean 150 follows, 30 % of follow edges to pulled accounts)",
    ),
    "active_follower_share": (
        0.5,
        "followers active within INACTIVE_DAYS (MAU / registered users)",
    ),
    "wau_per_dau": (1.5, "users whose home key lives (HOME_TTL_S: 7 days)"),
    "mau_per_dau": (2.0, "users whose user-timeline key and names are kept"),
    "hottest_account_share": (
        0.3,
        "share of home reads that merge the most-followed pulled account",
    ),
    "cpu_target": (0.6, "utilisation a pod or Redis node is sized for"),
    "api_pod_cores": (2, "gunicorn WEB_WORKERS=2 processes: 2 cores per API pod"),
    "worker_pod_cores": (1, "one Dramatiq process: 1 core per worker pod"),
    "redis_node_memory_gib": (24, "maxmemory per Redis node (32 GiB machine)"),
    "redis_overhead": (1.3, "fragmentation, replication and client buffers"),
    "db_pool_size": (8, "DB_POOL_SIZE per process (chart default)"),
    "pg_max_commits": (20_000, "commits/s one Postgres primary sustains (NVMe)"),
    "pg_max_cores": (64, "largest practical Postgres primary"),
    "pg_max_connections": (100, "Postgres max_connections without a pooler"),
    "rabbit_queue_msgs": (20_000, "messages/s one (quorum) queue sustains"),
    "redis_cluster_max_nodes": (1_000, "Redis Cluster's recommended upper bound"),
}

TWITTER_2012 = {
    "active_users": 150_000_000,
    "timeline_reads_s": 300_000,
    "tweets_s_mean": 4_600,
    "tweets_s_peak": 12_000,
    "delivery_s": 5,
}


def a(name: str) -> float:
    return ASSUMPTIONS[name][0]


def interpolate(points: list[dict], x: float, field: str = "cpu_us") -> dict:
    """Per-tier value at ``x``, linear between the measured points."""
    pts = sorted(points, key=lambda p: p["x"])
    lo = max((p for p in pts if p["x"] <= x), key=lambda p: p["x"], default=pts[0])
    hi = min((p for p in pts if p["x"] >= x), key=lambda p: p["x"], default=pts[-1])
    if hi["x"] == lo["x"]:
        return dict(lo[field])
    f = (x - lo["x"]) / (hi["x"] - lo["x"])
    return {t: lo[field][t] + f * (hi[field][t] - lo[field][t]) for t in lo[field]}


def unit_costs(doc: dict) -> dict:
    """CPU µs per operation per tier, and what each post costs downstream."""
    curves = doc["curves"]
    home = interpolate(curves["home_vs_pulled"]["points"], a("pulled_per_reader"))
    user = interpolate(curves["home_vs_pulled"]["points"], 0)
    deep = interpolate(curves["home_depth"]["points"], 4)
    create_pts = curves["create_vs_followers"]["points"]
    create = {
        t: sum(p["cpu_us"][t] for p in create_pts) / len(create_pts)
        for t in create_pts[0]["cpu_us"]
    }
    fan_points = [
        {**p, "x": p.get("active_followers", p["x"])}
        for p in curves["fanout_vs_followers"]["points"]
    ]
    deliveries = a("followers_per_post") * a("active_follower_share")
    marginal = marginal_us(fan_points)
    lag = doc.get("lag") or {}
    best = lag.get("at_sustained_rate") or {}
    if best.get("cpu_cores_by_tier"):
        # the sustained run: create and fan-out together, the relay's and the
        # worker's batching included, at its own followers per post; the
        # curve's marginal cost per follower carries it to ours
        rate, measured = best["achieved_rate"], lag["mean_active_followers_per_post"]
        post = {
            t: cores / rate * 1e6 + marginal[t] * max(0.0, deliveries - measured)
            for t, cores in best["cpu_cores_by_tier"].items()
        }
        post_source = f"sustained run at {best['offered_rate']} posts/s"
    else:
        fan = interpolate(fan_points, deliveries)
        post = {t: create[t] + fan[t] for t in create}
        post_source = "create and fan-out curves"
    pulled_slope = _pulled_slope(curves["home_vs_pulled"]["points"])
    msgs = best.get("messages_per_post")
    if msgs is None:
        msgs = fan_points[0].get("messages_per_tweet", 1)
    return {
        "home_read": home,
        "user_read": user,
        "deep_read": deep,
        "create": create,
        "post": post,
        "post_source": post_source,
        "marginal_us_per_follower": marginal,
        "deliveries_per_post": deliveries,
        "redis_us_per_pulled_key": pulled_slope,
        "messages_per_post": msgs,
    }


def marginal_us(points: list[dict]) -> dict[str, float]:
    """Per tier, µs per more follower between the two largest fan-outs: what
    a bigger audience adds, without the fixed costs (noisy at small sizes)."""
    lo, hi = sorted(points, key=lambda p: p["x"])[-2:]
    span = max(1, hi["x"] - lo["x"])
    return {
        t: max(0.0, (hi["cpu_us"][t] - lo["cpu_us"][t]) / span) for t in hi["cpu_us"]
    }


def _pulled_slope(points: list[dict]) -> float:
    """Redis µs a home read spends per pulled account it merges."""
    pts = sorted(points, key=lambda p: p["x"])
    if pts[-1]["x"] == pts[0]["x"]:
        return 0.0
    rise = pts[-1]["cpu_us"]["redis"] - pts[0]["cpu_us"]["redis"]
    return max(0.0, rise / (pts[-1]["x"] - pts[0]["x"]))


def rates(dau: int) -> dict:
    """Mean and peak operations per second."""
    mean = {
        "home_reads": dau * a("home_reads_per_dau") / DAY,
        "user_reads": dau * a("user_reads_per_dau") / DAY,
        "posts": dau * a("posts_per_dau") / DAY,
    }
    peak = {k: v * a("peak_factor") for k, v in mean.items()}
    return {"mean": mean, "peak": peak}


def cores(peak: dict, costs: dict) -> dict[str, float]:
    """Cores per tier at peak."""
    deep = a("deep_read_share")
    per_tier: dict[str, float] = {}
    for tier in costs["create"]:
        us = (
            peak["home_reads"] * (1 - deep) * costs["home_read"][tier]
            + peak["home_reads"] * deep * costs["deep_read"][tier]
            + peak["user_reads"] * costs["user_read"][tier]
            + peak["posts"] * costs["post"][tier]
        )
        per_tier[tier] = us / 1e6
    return per_tier


def redis_bytes(dau: int, fp: dict, posts_day: float) -> dict:
    """Homes at the cap for weekly-active users, user timelines and per-user
    state for monthly-active ones, the read cache's tweets of a day."""
    kinds = fp["by_kind"]
    per_user_other = sum(
        v["bytes"] for k, v in kinds.items() if k not in ("home", "utl", "t")
    ) / max(1, fp["active_users"])
    homes = dau * a("wau_per_dau") * fp["home_bytes_full"]
    users = dau * a("mau_per_dau") * (fp["user_timeline_bytes_mean"] + per_user_other)
    cache = posts_day * fp["cached_tweet_bytes_mean"]
    total = (homes + users + cache) * a("redis_overhead")
    return {"homes": homes, "users": users, "cache": cache, "total": total}


def plan(dau: int, doc: dict, costs: dict) -> dict:
    r = rates(dau)
    c = cores(r["peak"], costs)
    fp = doc["footprint"]
    mem = redis_bytes(dau, fp, r["mean"]["posts"] * DAY)
    target = a("cpu_target")
    api_pods = max(2, math.ceil(c["api"] / (a("api_pod_cores") * target)))
    worker_pods = max(2, math.ceil(c["worker"] / (a("worker_pod_cores") * target)))
    by_cpu = math.ceil(c["redis"] / target)
    by_mem = math.ceil(mem["total"] / (a("redis_node_memory_gib") * GIB))
    masters = max(3, by_cpu, by_mem)
    tweet_row = fp["postgres"]["tweets"]["bytes_per_row"] or 0
    posts_year = r["mean"]["posts"] * DAY * 365
    msgs_peak = r["peak"]["posts"] * costs["messages_per_post"]
    hot = (
        r["peak"]["home_reads"]
        * a("hottest_account_share")
        * costs["redis_us_per_pulled_key"]
        / 1e6
    )
    connections = (api_pods * 2 + worker_pods) * a("db_pool_size")
    limits = {
        "Postgres commits/s (one primary)": (
            r["peak"]["posts"],
            a("pg_max_commits"),
            "batch writes, then shard tweets by author",
        ),
        "Postgres cores (one primary)": (
            c["postgres"],
            a("pg_max_cores"),
            "read replicas for pages past the cap, then shard",
        ),
        "Postgres connections (no pooler)": (
            connections,
            a("pg_max_connections"),
            "PgBouncer (transaction pooling) as a native sidecar",
        ),
        "RabbitMQ messages/s (one queue)": (
            msgs_peak,
            a("rabbit_queue_msgs"),
            "more fan-out queues (split by author hash)",
        ),
        "Redis node holding the hottest pulled account (cores)": (
            hot,
            target,
            "cache pulled timelines in the API process, or replicas for reads",
        ),
        "Redis Cluster nodes": (
            masters * 2,
            a("redis_cluster_max_nodes"),
            "several clusters, users split between them",
        ),
    }
    ranked = sorted(limits.items(), key=lambda kv: -kv[1][0] / kv[1][1])
    return {
        "dau": dau,
        "rates": r,
        "cores": c,
        "api_pods": api_pods,
        "worker_pods": worker_pods,
        "redis": {"masters_by_cpu": by_cpu, "masters_by_memory": by_mem},
        "redis_masters": masters,
        "redis_memory": mem,
        "postgres": {
            "commits_peak": r["peak"]["posts"],
            "rows_per_year": posts_year,
            "bytes_per_year": posts_year * tweet_row,
        },
        "rabbitmq_msgs_peak": msgs_peak,
        "hot_node_cores": hot,
        "db_connections": connections,
        "limits": ranked,
    }


# ------------------------------------------------------------------ document
def _n(value: float, digits: int = 0) -> str:
    if value >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _size(value: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", GIB), ("MiB", 2**20)):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,.0f} B"


def _label(dau: int) -> str:
    return f"{dau // 1_000_000}M DAU"


def values_yaml(p: dict) -> str:
    """The chart values (charts/twitter/values.yaml keys) that deploy a plan."""
    api_cpu = a("api_pod_cores")
    return "\n".join(
        [
            "```yaml",
            "api:",
            f"  replicas: {p['api_pods']}",
            "  gunicorn: {workers: 2, threads: 4}",
            "  resources:",
            f'    requests: {{cpu: "{api_cpu}", memory: 512Mi}}',
            "    limits: {memory: 1Gi}",
            "workers:",
            "  - name: fanout",
            "    queues: [fanout, timeline]",
            f"    replicas: {max(1, math.ceil(p['worker_pods'] * 0.8))}",
            '    resources: {requests: {cpu: "1", memory: 256Mi},'
            " limits: {memory: 512Mi}}",
            "  - name: bulk",
            "    queues: [fanout_bulk]",
            f"    replicas: {max(1, math.ceil(p['worker_pods'] * 0.2))}",
            '    resources: {requests: {cpu: "1", memory: 256Mi},'
            " limits: {memory: 512Mi}}",
            "config:",
            "  fanoutThreshold: 5000",
            "  inactiveDays: 30",
            "  # over max_connections: PgBouncer as a native sidecar",
            "  # (api.extraInitContainers with restartPolicy: Always)",
            "  dbPoolSize: 8",
            "redis:",
            "  enabled: false",
            "  host: redis-cluster.example.internal",
            "  external:",
            "    mode: cluster",
            "    seedNodes: [redis-cluster-0:6379, redis-cluster-1:6379]",
            f"  # {p['redis_masters']} masters + {p['redis_masters']} replicas",
            "postgres:",
            "  enabled: false",
            "  host: postgres-rw.example.internal",
            "rabbitmq:",
            "  enabled: false",
            "  host: rabbitmq.example.internal",
            "```",
        ]
    )


def _assumption_table() -> list[str]:
    lines = ["| assumption | value | meaning |", "|---|---|---|"]
    lines += [f"| `{k}` | {v} | {why} |" for k, (v, why) in ASSUMPTIONS.items()]
    return lines


def _unit_table(costs: dict) -> list[str]:
    tiers = list(costs["create"])
    lines = [
        "| operation (µs CPU) | " + " | ".join(tiers) + " |",
        "|---|" + "---|" * len(tiers),
    ]
    for label, key in (
        (f"home read, {a('pulled_per_reader')} pulled accounts", "home_read"),
        ("home read past the cap (depth 4)", "deep_read"),
        ("user timeline read (as a home read with 0 pulled)", "user_read"),
        ("tweet create (the request alone, worker paused)", "create"),
        (
            f"a post: create + fan-out to {costs['deliveries_per_post']:.0f} homes"
            f" ({costs['post_source']})",
            "post",
        ),
    ):
        lines.append(
            f"| {label} | " + " | ".join(_n(costs[key][t], 1) for t in tiers) + " |"
        )
    return lines


def _plan_table(plans: list[dict]) -> list[str]:
    head = "| | " + " | ".join(_label(p["dau"]) for p in plans) + " |"
    rows = [head, "|---|" + "---|" * len(plans)]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(p) for p in plans) + " |")

    row("home reads/s, mean / peak", lambda p: _pair(p, "home_reads"))
    row("user reads/s, mean / peak", lambda p: _pair(p, "user_reads"))
    row("posts/s, mean / peak", lambda p: _pair(p, "posts"))
    for tier in ("api", "worker", "redis", "postgres", "rabbitmq"):
        row(f"{tier} cores at peak", lambda p, t=tier: _n(p["cores"][t], 1))
    row("API pods (2 cores)", lambda p: str(p["api_pods"]))
    row("worker pods (1 core)", lambda p: str(p["worker_pods"]))
    row(
        "Redis masters by CPU / by memory",
        lambda p: f"{p['redis']['masters_by_cpu']} / {p['redis']['masters_by_memory']}",
    )
    row("Redis nodes (masters + replicas)", lambda p: str(2 * p["redis_masters"]))
    row("Redis memory", lambda p: _size(p["redis_memory"]["total"]))
    row("Postgres commits/s at peak", lambda p: _n(p["postgres"]["commits_peak"]))
    row("Postgres tweets per year", lambda p: _n(p["postgres"]["rows_per_year"]))
    row(
        "Postgres tweets table per year",
        lambda p: _size(p["postgres"]["bytes_per_year"]),
    )
    row("RabbitMQ messages/s at peak", lambda p: _n(p["rabbitmq_msgs_peak"], 1))
    row("DB connections (pods x processes x pool)", lambda p: _n(p["db_connections"]))
    row("first bottleneck", lambda p: _nth(p, 0))
    row("next one", lambda p: _nth(p, 1))
    return rows


def _pair(p: dict, key: str) -> str:
    return f"{_n(p['rates']['mean'][key])} / {_n(p['rates']['peak'][key])}"


def _nth(p: dict, n: int) -> str:
    name, (demand, ceiling, _) = p["limits"][n]
    return f"{name}: {demand / ceiling:.0%} of its ceiling"


def _limits(p: dict) -> list[str]:
    lines = [f"**{_label(p['dau'])}**", ""]
    lines += ["| limit | demand | ceiling | use | past it |", "|---|---|---|---|---|"]
    for name, (demand, ceiling, fix) in p["limits"]:
        lines.append(
            f"| {name} | {_n(demand, 2)} | {_n(ceiling, 1)}"
            f" | {demand / ceiling:.0%} | {fix} |"
        )
    return lines


def _failure(lag: dict) -> str:
    failure = (lag.get("steps") or [{}])[-1].get("failure") or "none (top step)"
    if failure.startswith("generator:"):  # runs before the message was short
        return "the API fell behind: answers came over 30 s late"
    return failure


def _tiers(cores: dict | None) -> str:
    if not cores:
        return "-"
    return ", ".join(f"{t} {v:.2f}" for t, v in cores.items())


def _measured(doc: dict) -> list[str]:
    lag = doc.get("lag") or {}
    best = lag.get("at_sustained_rate") or {}
    burst = lag.get("burst") or {}
    fp = doc["footprint"]
    m = doc.get("machine", {})
    lines = [
        f"Run: `{doc.get('command', '?')}` at {doc.get('started_at')}, "
        f"{doc.get('duration_s')} s, {m.get('cores')} cores ({m.get('cpu')}), "
        "load average at the end "
        + " / ".join(f"{v:.1f}" for v in m.get("loadavg_at_end") or ())
        + " (a shared machine: other agents' tests and benchmarks ran meanwhile).",
        "",
        f"* Sustained posting with fan-out lag p99 ≤ {lag.get('limit_s')} s: "
        f"**{lag.get('sustained_rate')} posts/s** on this machine "
        f"({lag.get('mean_active_followers_per_post')} active followers per post); "
        f"cores by tier at that rate: {_tiers(best.get('cpu_cores_by_tier'))}; "
        f"the next step failed: {_failure(lag)}; "
        f"lag p50/p99 {best.get('lag_s', {}).get('p50')}/"
        f"{best.get('lag_s', {}).get('p99')} s.",
        f"* A 2x burst ({burst.get('offered_rate')} posts/s for "
        f"{burst.get('seconds')} s): lag p99 {burst.get('lag_s', {}).get('p99')} s, "
        f"backlog drained {burst.get('backlog_drain_s')} s after posting stopped.",
        f"* Redis: {_n(fp['redis_bytes_per_active_user'])} B per active user, "
        f"{_n(fp['redis_bytes_per_user'])} B per user (active share "
        f"{fp['active_share']}, INACTIVE_DAYS {fp['inactive_days']}); a full home "
        f"({fp['timeline_cap']} entries) {_n(fp['home_bytes_full'])} B.",
        f"* Postgres: {_n(fp['postgres']['tweets']['bytes_per_row'])} B per tweet, "
        f"{_n(fp['postgres']['follows']['bytes_per_row'])} B per follow "
        "(heap + indexes).",
    ]
    return lines


def _cross_check(costs: dict) -> list[str]:
    t = TWITTER_2012
    scaled = rates(t["active_users"])
    fan = costs.get("largest_fanout_lag")
    lines = [
        f'Twitter 2012-2013 ("Timelines at scale"): {t["active_users"] // 10**6}M '
        f"active users, ~{_n(t['timeline_reads_s'])} timeline reads/s, "
        f"{_n(t['tweets_s_mean'])} tweets/s mean, {_n(t['tweets_s_peak'])} peak, "
        f"delivery within {t['delivery_s']} s.",
        f"This model at {t['active_users'] // 10**6}M DAU: "
        f"{_n(scaled['peak']['home_reads'] + scaled['peak']['user_reads'])} "
        f"timeline reads/s at peak, {_n(scaled['mean']['posts'])} posts/s mean, "
        f"{_n(scaled['peak']['posts'])} peak: the same order of magnitude "
        "(Twitter's users read more per post: its read/write ratio is ~65, "
        f"ours {_read_write_ratio():.0f}).",
    ]
    if fan:
        lines.append(
            f"Delivery: one tweet to {fan[0]:,} followers took {fan[1]} s here "
            "(commit to the last follower's home, one worker process on the "
            "shared cores; its chunks spread over the worker pods, so N pods "
            "take about 1/N of it); Twitter's target was 5 s for most tweets. "
            "With the production FANOUT_THRESHOLD=5000 an account that big is "
            "pulled at read time instead."
        )
    return lines


def _read_write_ratio() -> float:
    reads = a("home_reads_per_dau") + a("user_reads_per_dau")
    return reads / a("posts_per_dau")


def _reading() -> list[str]:
    return [
        "* API and worker pods, and Redis masters, scale out by replicas: their",
        "  counts grow linearly and are not bottlenecks, only cost. The limits",
        "  table ranks the parts that do not: one Postgres primary (commits,",
        "  cores, connections), one RabbitMQ queue, the one Redis node that holds",
        "  the most-followed pulled account's timeline (every home read of its",
        "  followers reads it), and the size of one Redis Cluster.",
        "* A home read costs the API ~1 ms of CPU whatever it merges; pulled",
        "  accounts cost Redis a few µs each (the read takes only the page's",
        "  window of their timelines); a page past the cap moves the cost to",
        "  Postgres.",
        "* A post's request costs the same whatever the author's audience (the",
        "  create curve is flat); its fan-out grows linearly with the active",
        "  followers, mostly in Redis and the worker.",
        "* The measurements are per CPU-second on a shared 2-core VM: the",
        "  production cores may be faster; the shape (which tier grows with",
        "  what) is the robust part.",
    ]


def render(doc: dict, source: str) -> str:
    costs = unit_costs(doc)
    fan_points = doc["curves"]["fanout_vs_followers"]["points"]
    biggest = max(fan_points, key=lambda p: p["x"])
    costs["largest_fanout_lag"] = (biggest["x"], biggest["lag_s"]["p50"])
    plans = [plan(dau, doc, costs) for dau in SCALES]
    parts = [
        "# Capacity model",
        "",
        f"Generated by `python -m bench.capacity` from `{source}`; do not edit: "
        "`make bench-curves` measures again and rewrites it. The measurements come "
        "from a shared 2-core machine and are **provisional**: CPU-seconds per "
        "operation are what the model uses, not this machine's throughput.",
        "",
        "## Measured",
        "",
        *_measured(doc),
        "",
        "Charts: `docs/curves/*.png`.",
        "",
        "## Unit costs (from the curves)",
        "",
        *_unit_table(costs),
        "",
        f"A post costs downstream {costs['messages_per_post']} RabbitMQ messages "
        "(measured at the sustained rate: the relay batches outbox jobs) and "
        f"{costs['deliveries_per_post']:.0f} home writes; a home read spends "
        f"{costs['redis_us_per_pulled_key']:.1f} µs of Redis per pulled account. "
        "Each follower more costs (the two largest fan-outs' difference): "
        + ", ".join(
            f"{t} {v:.2f} µs" for t, v in costs["marginal_us_per_follower"].items()
        )
        + ". RabbitMQ's meter is the machine's broker, which the neighbours'"
        " tests use too: its figures are upper bounds.",
        "",
        "## Assumptions",
        "",
        *_assumption_table(),
        "",
        "## What each scale needs (at peak)",
        "",
        *_plan_table(plans),
        "",
        "## Limits, ranked (demand against the ceiling of a part that does not"
        " scale out by replicas)",
        "",
    ]
    for p in plans:
        parts += [*_limits(p), ""]
    parts += ["## Chart values", ""]
    for p in plans:
        parts += [f"**{_label(p['dau'])}**", "", values_yaml(p), ""]
    parts += ["## Cross-check", "", *_cross_check(costs), ""]
    parts += ["## Reading it", "", *_reading(), ""]
    return "\n".join(parts)


def write(source: Path, target: Path) -> Path:
    doc = orjson.loads(source.read_bytes())
    try:
        rel = source.relative_to(PROJECT_ROOT)
    except ValueError:
        rel = source
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(doc, str(rel)))
    return target


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else PROJECT_ROOT / "bench/results/curves.json"
    target = Path(argv[1]) if len(argv) > 1 else PROJECT_ROOT / "docs/capacity.md"
    print(f"written {write(source, target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
