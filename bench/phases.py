"""The measured phases: each turns load runs into figures (value, baseline, ratio)."""

from __future__ import annotations

import statistics
import time

from bench import baselines, fanout, load, reads, replay, variants, world, writes
from bench.report import Figure

MAX_ERROR_SHARE = 0.01


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _checked(m: load.Measurement, what: str) -> load.Measurement:
    """A load run with failed requests measured something else: stop the run."""
    if m.raw["requests"] == 0 or m.errors > MAX_ERROR_SHARE * m.raw["requests"]:
        raise RuntimeError(f"{what}: {m.errors} errors in {m.raw['requests']} requests")
    return m


def reads_phase(w: world.World, figures: list[Figure]) -> None:
    files = reads.request_files(w)
    log("reads: no-op, home and user timeline rounds")
    runs = reads.throughput(w, files)
    for name, ms in runs.items():
        for m in ms:
            _checked(m, f"{name} reads")
    fallbacks = sum(
        m.counters.get("timeline_postgres_pages_total", 0)
        + m.counters.get("timeline_rebuilds_total", 0)
        for name in ("home", "user")
        for m in runs[name]
    )
    if fallbacks:
        log(f"warning: {fallbacks:.0f} timeline pages came from Postgres, not Redis")
    noop = reads.best_rate(runs["noop"])
    details = {name: [m.summary() for m in ms] for name, ms in runs.items()}
    for key, label in (
        ("home", "home timeline reads"),
        ("user", "user timeline reads"),
    ):
        figures.append(
            Figure(
                key=f"{key}_reads",
                label=label,
                unit="req/s",
                value=reads.best_rate(runs[key]),
                baseline=noop,
                baseline_label="no-op route req/s",
                target="ratio>=",
                target_value=0.5,
                details={
                    "runs": details[key],
                    "baseline_runs": details["noop"],
                    "per_core": round(reads.per_core(runs[key]), 1),
                    "baseline_per_core": round(reads.per_core(runs["noop"]), 1),
                    "per_core_ratio": round(
                        reads.per_core(runs[key]) / reads.per_core(runs["noop"]), 4
                    ),
                },
            )
        )
    figures += _cpu_per_read(runs)
    figures += _replayed(w)
    keys = _masters_keys(w)
    if keys is not None:
        figures.append(keys)
    rate = 0.5 * reads.best_rate(runs["home"])
    log(f"home latency at {rate:.0f} req/s (half the measured maximum)")
    m = _checked(reads.latency(w, files, rate), "home latency")
    lat = m.raw["latency_us"]
    log(f"no-op latency at the same {rate:.0f} req/s (context, not a target)")
    noop = _checked(reads.latency(w, files, rate, "noop"), "no-op latency")
    details = m.summary()
    details["noop_at_same_rate"] = noop.summary()
    figures.append(
        Figure(
            key="home_latency",
            label="home read latency p99 (at 50% of max)",
            unit="ms",
            value=lat["p99"] / 1000,
            baseline=lat["p50"] / 1000,
            baseline_label="ms p50",
            target="ratio<=",
            target_value=4,
            details=details,
        )
    )


def _per_request_us(runs: list[load.Measurement], tier: str) -> float:
    """A tier's CPU per request over the rounds (median), in microseconds;
    ``redis`` sums every Redis node's meter."""
    values = [
        sum(v for k, v in m.cpu_s.items() if k.split("@")[0] == tier)
        / m.raw["requests"]
        * 1e6
        for m in runs
    ]
    return statistics.median(values)


def _per_request(runs: list[load.Measurement], counter: str) -> float:
    """An app or Redis counter per request over the rounds (median)."""
    return statistics.median(m.counters[counter] / m.raw["requests"] for m in runs)


def _masters_balance(runs: list[load.Measurement]) -> Figure | None:
    """On a cluster: the masters' CPU during the home reads."""
    per_master: dict[str, float] = {}
    for m in runs:
        for name, seconds in m.cpu_s.items():
            if name.endswith("@primary"):
                per_master[name] = per_master.get(name, 0.0) + seconds
    if len(per_master) < 2:
        return None
    return _spread("cluster_cpu_balance", "CPU during home reads", per_master)


def _masters_keys(w: world.World) -> Figure | None:
    """On a cluster: the masters' keys."""
    client = w.store.redis
    if not hasattr(client, "get_primaries"):
        return None
    sizes = {
        str(node.port): node.redis_connection.dbsize()
        for node in client.get_primaries()
    }
    return _spread("cluster_keys_balance", "keys", sizes)


def _spread(key: str, what: str, by_master: dict) -> Figure:
    """How far the largest or smallest master strays from the masters' mean
    (target: within 20%, an even share of the work)."""
    mean = statistics.fmean(by_master.values())
    spread = max(abs(v / mean - 1) for v in by_master.values()) * 100
    log(f"cluster masters' {what}: {by_master} ({spread:.0f}% off)")
    return Figure(
        key=key,
        label=f"cluster masters' {what}, largest deviation from their mean",
        unit="%",
        value=spread,
        target="value<=",
        target_value=20,
        details={"by_master": by_master},
    )


def _cpu_per_read(runs) -> list[Figure]:
    """What one read costs each tier: Redis (the tier hardest to grow) per
    home and user read, and the API's CPU against the no-op route's."""
    noop_api = _per_request_us(runs["noop"], "server")
    figures = []
    for key, limit in (("home", 30), ("user", 20)):
        redis_us = _per_request_us(runs[key], "redis")
        work = {
            k: _per_request(runs[key], k)
            for k in ("redis_commands", "redis_reads", "redis_command_us")
        }
        log(
            f"Redis CPU per {key} read: {redis_us:.1f} us (all nodes), of which"
            f" {work['redis_command_us']:.1f} us in the commands themselves;"
            f" {work['redis_commands']:.1f} commands and"
            f" {work['redis_reads']:.2f} client reads (round trips) per request"
        )
        figures.append(
            Figure(
                key=f"{key}_redis_us",
                label=f"Redis CPU per {key} read",
                unit="us",
                value=redis_us,
                target="value<=",
                target_value=limit,
                details={
                    "noop_round_redis_us": _per_request_us(runs["noop"], "redis"),
                    "commands_per_request": work["redis_commands"],
                    "command_us_per_request": work["redis_command_us"],
                    "round_trips_per_request": work["redis_reads"],
                },
            )
        )
    balance = _masters_balance(runs["home"])
    if balance is not None:
        figures.append(balance)
    api_us = _per_request_us(runs["home"], "server")
    figures += _floor(runs, api_us)
    figures.append(
        Figure(
            key="home_api_us",
            label="API CPU per home read",
            unit="us",
            value=api_us,
            baseline=noop_api,
            baseline_label="us per no-op request",
            target="ratio<=",
            target_value=2.5,
            details={"postgres_us": _per_request_us(runs["home"], "postgres")},
        )
    )
    return figures


def _floor(runs, home_api_us: float) -> list[Figure]:
    """What two round trips of one GET cost before any work (``/floor``):
    Redis's CPU per request, and the home read's API CPU against it."""
    floor = runs.get("floor")
    if not floor:
        return []
    redis_us = _per_request_us(floor, "redis")
    api_us = _per_request_us(floor, "server")
    trips = _per_request(floor, "redis_reads")
    command_us = _per_request(floor, "redis_command_us")
    log(
        f"floor (two round trips of one GET): Redis {redis_us:.1f} us"
        f" ({command_us:.1f} us in the commands), API {api_us:.0f} us per"
        f" request, {trips:.2f} round trips"
    )
    return [
        Figure(
            key="floor_redis_us",
            label="Redis CPU per request of the floor (two round trips, one GET each)",
            unit="us",
            value=redis_us,
            details={
                "round_trips_per_request": trips,
                "command_us_per_request": command_us,
                "rate": reads.best_rate(floor),
                "per_core": round(reads.per_core(floor), 1),
            },
        ),
        Figure(
            key="home_api_us_vs_floor",
            label="API CPU per home read, against the floor route's",
            unit="us",
            value=home_api_us,
            baseline=api_us,
            baseline_label="us per floor request",
        ),
    ]


def _replayed(w: world.World) -> list[Figure]:
    """Redis CPU per read when many connections keep it busy (bench/replay.py)."""
    measured = replay.measure(w, w.profile.replay_s)
    if measured is None:
        log("replay: skipped on a cluster")
        return []
    figures = []
    for kind, m in measured.items():
        busiest = m["replays"][-1]
        log(
            f"replayed {kind} reads: {m['round_trips_per_read']:.2f} round trips,"
            f" {m['commands_per_read']:.1f} commands;"
            + "; ".join(
                f" {r['connections']} conn: {r['reads_per_s']}/s,"
                f" {r['redis_us_per_read']} us"
                for r in m["replays"]
            )
        )
        figures.append(
            Figure(
                key=f"{kind}_redis_us_replayed",
                label=f"Redis CPU per {kind} read, replayed on"
                f" {busiest['connections']} connections",
                unit="us",
                value=busiest["redis_us_per_read"],
                target="value<=",
                target_value=30 if kind == "home" else 20,
                details=m,
            )
        )
    return figures


def writes_phase(w: world.World, figures: list[Figure]) -> None:
    log("baseline: argon2id hashes on one core")
    hashes = baselines.hash_rate(w.settings, w.profile.hash_s)
    log("logins")
    m = _checked(writes.logins(w), "logins")
    s = w.settings
    figures.append(
        Figure(
            key="logins",
            label="logins",
            unit="/s",
            value=m.rate,
            baseline=hashes["rate"],
            baseline_label="argon2id hashes/s on one core",
            details={
                **m.summary(),
                "argon2id": {
                    "memory_kib": s.argon2_memory_kib,
                    "time_cost": s.argon2_time_cost,
                    "parallelism": s.argon2_parallelism,
                    "meets_owasp": baselines.owasp_ok(s),
                },
                "baseline": hashes,
            },
        )
    )
    # commit latency swings with the neighbours' disk use: bracket the creates
    log("baseline: single-row INSERTs from one connection")
    before = baselines.insert_rate(s.database_dsn, w.profile.insert_s / 2)
    log("tweet creates (after warming the creators' tokens)")
    writes.warm_tokens(w)
    m = _checked(writes.creates(w), "tweet creates")
    drained = writes.drain(w)
    log(f"workers drained the creates in {drained['seconds']}s")
    # the API's own share: the same load with the worker stopped (the outbox
    # fills up and is relayed once it resumes)
    log("tweet creates with the worker paused")
    with w.services["worker"].paused():
        alone = _checked(writes.creates(w), "tweet creates, worker paused")
    # the backlog the pause left: relay (outbox -> broker) and fan-out
    backlog = writes.drain(w)
    backlog["jobs_per_s"] = round(alone.raw["requests"] / backlog["seconds"], 1)
    log(f"workers drained the paused creates' backlog in {backlog['seconds']}s")
    log("baseline: single-row INSERTs again")
    after = baselines.insert_rate(s.database_dsn, w.profile.insert_s / 2)
    inserts = {
        "rate": statistics.fmean([before["rate"], after["rate"]]),
        "before": before,
        "after": after,
    }
    figures.append(
        _creates_figure(
            "tweet_creates",
            "tweet creates (commit + outbox)",
            m,
            inserts,
            target="ratio>=",
            target_value=0.3,
            details={
                **m.summary(),
                "baseline": inserts,
                "drain": drained,
                "backlog_drain": backlog,
                "worker_paused": alone.summary(),
            },
        )
    )
    figures.append(
        _creates_figure(
            "tweet_creates_api_alone",
            "tweet creates, worker paused (the API alone)",
            alone,
            inserts,
            details={"see": "tweet_creates.details.worker_paused"},
        )
    )
    if drained["dead_letters"]:
        raise RuntimeError(f"{drained['dead_letters']} jobs were dead-lettered")


def _creates_figure(
    key: str, label: str, m: load.Measurement, inserts: dict, **more
) -> Figure:
    return Figure(
        key=key,
        label=label,
        unit="/s",
        value=m.rate,
        baseline=inserts["rate"],
        baseline_label="INSERTs/s, one connection",
        **more,
    )


def fanout_phase(w: world.World, figures: list[Figure]) -> None:
    log("fan-out lag")
    lags = fanout.lag(w)
    for key, (followers, lag) in zip(
        ("s", "m", "l"), sorted(lags.items()), strict=True
    ):
        biggest = key == "l"
        figures.append(
            Figure(
                key=f"fanout_lag_{key}",
                label=f"fan-out lag p99, {followers} followers",
                unit="s",
                value=lag["p99"],
                target="value<=" if biggest else "",
                target_value=1.0 if biggest else None,
                details=lag,
            )
        )
    log("baseline: redis-benchmark ZADD -P 16 into 10k keys")
    zadd = baselines.zadd_rate(w.names, w.profile.zadd_requests)
    burst = fanout.burst_size(w, max(lag["p50"] for lag in lags.values()))
    log(f"fan-out rate ({burst} tweets)")
    rate = fanout.rate(w, burst)
    figures.append(
        Figure(
            key="fanout_rate",
            label=f"fan-out entries/s per process ({rate['followers']} followers)",
            unit="/s",
            value=rate["rate"],
            baseline=zadd["rate"],
            baseline_label="ZADD/s, redis-benchmark -P 16",
            target="ratio>=",
            target_value=0.7,
            details={**rate, "baseline": zadd},
        )
    )


def redis_phase(w: world.World, figures: list[Figure]) -> None:
    cap = w.settings.timeline_cap
    client, store = w.store.redis, w.store
    sizes, lengths = [], []
    for u in w.readers[:200]:
        key = store.home_key(w.data.user_ids[u])
        timeline = store.read([key])[0]
        if timeline is not None and len(timeline) == cap:
            sizes.append(client.memory_usage(key, samples=0))
            lengths.append(len(timeline.raw))
    if not sizes:
        raise RuntimeError("no full home timeline to measure")
    figures.append(
        Figure(
            key="redis_bytes",
            label=f"Redis bytes per full home timeline ({cap} entries)",
            unit="B",
            value=statistics.fmean(sizes),
            baseline=8 * cap,
            baseline_label="B (8 x cap, raw ids)",
            target="ratio<=",
            target_value=2.5,
            details={"keys_measured": len(sizes), "strlen": max(lengths)},
        )
    )


# name -> (measure, figure keys), in run order
PHASES = {
    # an experiment, run only when named: --only variants --variant NAME=SPEC
    "variants": (variants.phase, []),
    "redis": (redis_phase, ["redis_bytes"]),
    "reads": (
        reads_phase,
        ["home_reads", "user_reads", "home_latency", "floor_redis_us"],
    ),
    "writes": (writes_phase, ["logins", "tweet_creates", "tweet_creates_api_alone"]),
    "fanout": (
        fanout_phase,
        ["fanout_lag_s", "fanout_lag_m", "fanout_lag_l", "fanout_rate"],
    ),
}
