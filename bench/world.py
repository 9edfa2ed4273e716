"""Everything a run measures against: names, data, tokens and running services."""

from __future__ import annotations

import gc
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench import dataset, infra, loader, meters, server
from bench.config import Profile
from core.keys import Keys
from core.passwords import Passwords
from core.settings import Settings
from core.timeline_store import TimelineStore
from core.tokens import ACCESS, TokenCodec

PASSWORD = "bench-password-1"
WORKER_PROCESSES, WORKER_THREADS = 1, 4  # the chart's workerDefaults


@dataclass
class World:
    profile: Profile
    names: infra.Names
    settings: Settings
    env: dict
    data: dataset.Dataset
    store: TimelineStore
    tokens: dict[int, str]  # user index -> access token
    readers: list[int]
    creators: list[int]
    user_targets: list[int]
    ports: dict[str, int]
    wrk: str | None = None  # the load generator (None: bench.pyload)
    gunicorn_extra: tuple[str, ...] = ()  # experiments: e.g. ("--max-requests", "0")
    variants: list = field(default_factory=list)  # experiments: bench.variants
    services: dict[str, server.Service] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.names.workdir

    def cpu_meters(self, target: str = "api") -> dict[str, meters.Meter]:
        """CPU meters for a load run against the ``target`` service."""
        return {
            "server": meters.service(self.services[target]),
            "worker": meters.service(self.services["worker"]),
            "postgres": meters.postgres(self.names.database),
            **meters.redis_meters(self.store.redis),
        }

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


def _timed(timings: dict, name: str, fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    timings[name] = round(time.perf_counter() - started, 2)
    return out


def build(
    profile: Profile, seed: int, names: infra.Names, log, overrides: dict
) -> World:
    """Create the run's names, load the data set and mint tokens (no processes).

    ``overrides`` change the services' environment (experiments only: the
    published figures use the production settings)."""
    timings: dict[str, float] = {}
    ports, env, settings = prepare(names, profile, overrides)
    log(f"data set: {profile.users} users, {profile.tweets} tweets (seed {seed})")
    data = _timed(timings, "generate", dataset.build, profile, seed)
    client = load(data, settings, names, timings, log)
    if profile.name == "quick":
        bad = loader.check_counters(settings.database_dsn)
        if bad:
            raise AssertionError(f"{bad} rows with wrong counters after the load")
    rng = random.Random(seed + 1)
    regular = list(data.regular())
    readers = rng.sample(regular, profile.readers)
    creators = rng.sample(regular, profile.readers)
    counts = [0] * len(data.user_ids)
    for _, author, *_ in data.tweets:
        counts[author] += 1
    authors = [a for a in regular if counts[a] >= 20] or regular
    targets = rng.choices(authors, k=profile.readers)
    codec = TokenCodec.from_settings(settings)
    wanted = set(readers) | set(creators) | set(data.probes)
    tokens = _timed(timings, "tokens", _mint, codec, data, sorted(wanted))
    return World(
        profile=profile,
        names=names,
        settings=settings,
        env=env,
        data=data,
        store=timeline_store(client, settings),
        tokens=tokens,
        readers=readers,
        creators=creators,
        user_targets=targets,
        ports=ports,
        timings=timings,
    )


def prepare(names: infra.Names, profile, overrides: dict) -> tuple:
    """(ports, env, settings): the run's names created, free ports, and the
    services' environment."""
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
    env = {**infra.service_env(names, profile, ports, metrics_dir), **overrides}
    return ports, env, Settings.from_env(env)


def load(data, settings: Settings, names: infra.Names, timings: dict, log):
    """Migrate, copy the data set into Postgres and its timelines into Redis;
    returns the Redis client."""
    gc.freeze()  # millions of long-lived objects: keep the collector off them
    _timed(timings, "migrate", loader.migrate, settings)
    password_hash = Passwords(settings).hash(PASSWORD)
    copied = _timed(
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
    _timed(timings, "redis", loader.materialize, data, client, settings)
    return client


def timeline_store(client, settings: Settings) -> TimelineStore:
    return TimelineStore(
        client, Keys(settings.redis_prefix), settings.timeline_cap, settings.home_ttl_s
    )


def _mint(codec: TokenCodec, data: dataset.Dataset, users: list[int]) -> dict:
    return {
        u: codec.issue(data.user_ids[u], str(uuid.uuid4()), ACCESS)[0] for u in users
    }


def start_services(world: World) -> None:
    """API, no-op baseline and worker, with the production commands."""
    logdir = world.workdir
    settings = world.settings
    noop_env = dict(world.env, PORT=str(world.ports["noop"]))
    world.services["api"] = server.start(
        "api",
        server.api_command(settings, None, world.gunicorn_extra),
        world.env,
        logdir,
    )
    world.services["noop"] = server.start(
        "noop",
        server.api_command(settings, server.NOOP_APP, world.gunicorn_extra),
        noop_env,
        logdir,
    )
    world.services["worker"] = server.start(
        "worker",
        server.worker_command(WORKER_PROCESSES, WORKER_THREADS),
        world.env,
        logdir,
    )
    server.wait_http(
        world.services["api"], f"http://127.0.0.1:{world.ports['api']}/readyz"
    )
    server.wait_http(
        world.services["noop"], f"http://127.0.0.1:{world.ports['noop']}/noop"
    )
    if not world.services["worker"].alive():
        raise RuntimeError(f"worker exited; see {world.services['worker'].log}")
