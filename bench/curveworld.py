"""The cost curves' world: ``bench.synth``'s data set loaded like the full
bench's (COPY, timelines SET in Redis and checked against Timelines.rebuild),
then shaped: big accounts above the threshold, inactive users aged past
INACTIVE_DAYS with their keys gone (as their TTL would have done)."""

from __future__ import annotations

import gc
import random
import time

import psycopg2

from bench import infra, loader, server, synth, world
from bench.synth import Cohorts, CurveProfile
from core.keys import Keys
from core.passwords import Passwords
from core.settings import Settings
from core.timeline_store import TimelineStore
from core.tokens import TokenCodec

INACTIVE_AGE_DAYS = 60  # well past INACTIVE_DAYS (30)


def build(p: CurveProfile, seed: int, names: infra.Names, log) -> tuple:
    """(World, Cohorts); the services are not started yet."""
    timings: dict[str, float] = {}
    infra.create(names)
    ports = dict(
        zip(
            ("api", "noop", "worker_metrics", "metrics"),
            server.free_ports(4),
            strict=True,
        )
    )
    metrics_dir = names.workdir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = infra.service_env(names, p, ports, metrics_dir)
    settings = Settings.from_env(env)
    log(f"curves data set: {p.users} users (seed {seed})")
    started = time.perf_counter()
    data, cohorts = synth.build(p, seed)
    timings["generate"] = round(time.perf_counter() - started, 2)
    gc.freeze()
    world._timed(timings, "migrate", loader.migrate, settings)
    password_hash = Passwords(settings).hash(world.PASSWORD)
    copied = world._timed(
        timings,
        "postgres",
        loader.load_postgres,
        data,
        settings.database_dsn,
        password_hash,
    )
    timings["postgres_detail"] = copied["seconds"]
    client = infra.redis_client(names)
    log("materializing timelines in Redis")
    world._timed(timings, "redis", loader.materialize, data, client, settings)
    world._timed(timings, "shape", _shape, p, data, cohorts, settings, client)
    codec = TokenCodec.from_settings(settings)
    readers = [u for rs in cohorts.by_pulled.values() for u in rs]
    readers += cohorts.deep_readers
    wanted = set(readers) | set(cohorts.posters) | set(cohorts.probes.values())
    tokens = world._timed(timings, "tokens", world._mint, codec, data, sorted(wanted))
    store = TimelineStore(
        client, Keys(settings.redis_prefix), settings.timeline_cap, settings.home_ttl_s
    )
    w = world.World(
        profile=p,
        names=names,
        settings=settings,
        env=env,
        data=data,
        store=store,
        tokens=tokens,
        readers=readers,
        creators=cohorts.posters,
        user_targets=[],
        ports=ports,
        timings=timings,
    )
    return w, cohorts


def _shape(p: CurveProfile, data, cohorts: Cohorts, settings: Settings, client):
    """Big accounts above the threshold; inactive users aged, their keys gone."""
    uid = data.user_ids
    conn = psycopg2.connect(settings.database_dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE users SET follower_count = %s WHERE id = ANY(%s)",
                (p.big_follower_count, [uid[b] for b in data.big]),
            )
            cur.execute(
                "UPDATE users SET active_at = now() - make_interval(days => %s)"
                " WHERE id = ANY(%s)",
                (INACTIVE_AGE_DAYS, [uid[u] for u in cohorts.inactive]),
            )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE) users")
    finally:
        conn.close()
    keys = Keys(settings.redis_prefix)
    pipe = client.pipeline(transaction=False)
    for n, u in enumerate(cohorts.inactive, 1):
        pipe.unlink(keys.home(uid[u]), keys.user_timeline(uid[u]))
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()


def sample(items: list, n: int, seed: int = 3) -> list:
    return items if len(items) <= n else random.Random(seed).sample(items, n)
