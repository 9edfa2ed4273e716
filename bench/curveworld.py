"""The cost curves' world: ``bench.synth``'s data set loaded like the full
bench's (COPY, timelines SET in Redis and checked against Timelines.rebuild),
then shaped: big accounts above the threshold, inactive users aged past
INACTIVE_DAYS with their keys gone (as their TTL would have done)."""

from __future__ import annotations

import random
import time

import psycopg2

from bench import infra, synth, world
from bench.synth import Cohorts, CurveProfile
from core.keys import Keys
from core.settings import Settings
from core.tokens import TokenCodec

INACTIVE_AGE_DAYS = 60  # well past INACTIVE_DAYS (30)


def build(p: CurveProfile, seed: int, names: infra.Names, log) -> tuple:
    """(World, Cohorts); the services are not started yet."""
    timings: dict[str, float] = {}
    ports, env, settings = world.prepare(names, p, {})
    log(f"curves data set: {p.users} users (seed {seed})")
    started = time.perf_counter()
    data, cohorts = synth.build(p, seed)
    timings["generate"] = round(time.perf_counter() - started, 2)
    client = world.load(data, settings, names, timings, log)
    world._timed(timings, "shape", _shape, p, data, cohorts, settings, client)
    codec = TokenCodec.from_settings(settings)
    readers = [u for rs in cohorts.by_pulled.values() for u in rs]
    readers += cohorts.deep_readers
    wanted = set(readers) | set(cohorts.posters) | set(cohorts.probes.values())
    tokens = world._timed(timings, "tokens", world._mint, codec, data, sorted(wanted))
    w = world.World(
        profile=p,
        names=names,
        settings=settings,
        env=env,
        data=data,
        store=world.timeline_store(client, settings),
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
