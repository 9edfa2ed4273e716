"""Read throughput against the no-op route, and home latency at half of it."""

from __future__ import annotations

import statistics
from urllib.parse import quote

from bench import appmetrics, load
from bench import meters as meters_
from bench.client import Api
from bench.load import Request
from bench.world import World

PAGE = 20  # the API's default page size
BASELINES = ("noop", "floor")  # routes of bench.noop


def request_files(world: World) -> dict[str, object]:
    data, tokens = world.data, world.tokens
    home = [Request("GET", "/timeline/home", tokens[u]) for u in world.readers]
    user = [
        Request(
            "GET",
            f"/timeline/user?username={quote(data.usernames[target])}",
            tokens[viewer],
        )
        for viewer, target in zip(world.readers, world.user_targets, strict=True)
    ]
    return {
        "noop": load.write_requests(world.workdir, "noop", [Request("GET", "/noop")]),
        "floor": load.write_requests(
            world.workdir, "floor", [Request("GET", "/floor")]
        ),
        "home": load.write_requests(world.workdir, "home", home),
        "user": load.write_requests(world.workdir, "user", user),
    }


def validate(world: World, sample: int = 20) -> dict:
    """Reads answer full, hydrated pages and do merge the big accounts' tweets."""
    api = Api(world.ports["api"])
    big = {str(world.data.user_ids[b]) for b in world.data.big}
    pulled = 0
    try:
        for u in world.readers[:sample]:
            status, body = api.call("GET", "/timeline/home", world.tokens[u])
            items = body["data"] if status == 200 else []
            if len(items) != PAGE or any("tweet_content" not in t for t in items):
                raise AssertionError(f"home page of user {u}: {status} {body!r:.300}")
            pulled += any(t["author_id"] in big for t in items)
        for viewer, target in zip(
            world.readers[:sample], world.user_targets, strict=False
        ):
            name = quote(world.data.usernames[target])
            status, body = api.call(
                "GET", f"/timeline/user?username={name}", world.tokens[viewer]
            )
            if status != 200 or len(body["data"]) != PAGE:
                raise AssertionError(f"user timeline of {name}: {status} {body!r:.300}")
    finally:
        api.close()
    return {"pages_checked": sample, "home_pages_with_pulled_tweets": pulled}


def throughput(world: World, files: dict) -> dict[str, list[load.Measurement]]:
    """Rounds of no-op, floor, home, user: interleaved so drift hits them alike."""
    p, wrk = world.profile, world.wrk
    targets = {
        "noop": (world.ports["noop"], world.cpu_meters("noop")),
        "floor": (world.ports["noop"], world.cpu_meters("noop")),
        "home": (world.ports["api"], world.cpu_meters()),
        "user": (world.ports["api"], world.cpu_meters()),
    }
    for name, (port, meters) in targets.items():
        load.closed(wrk, port, files[name], p.warmup_s, p.connections, meters)
    runs: dict[str, list[load.Measurement]] = {name: [] for name in targets}
    for _ in range(p.rounds):
        for name, (port, meters) in targets.items():
            service = world.services["noop" if name in BASELINES else "api"]
            before, boots = appmetrics.scrape(world.ports["metrics"]), service.boots()
            work = meters_.redis_work(world.store.redis)
            m = load.closed(wrk, port, files[name], p.read_s, p.connections, meters)
            m.counters = appmetrics.delta(
                before, appmetrics.scrape(world.ports["metrics"])
            )
            after = meters_.redis_work(world.store.redis)
            m.counters.update({k: after[k] - work[k] for k in work})
            # gunicorn's max_requests restarts a worker every 20k requests
            m.counters["worker_restarts"] = service.boots() - boots
            runs[name].append(m)
    return runs


def best_rate(runs: list[load.Measurement]) -> float:
    """The best round: neighbours on a shared machine only ever subtract."""
    return max(m.rate for m in runs)


def per_core(runs: list[load.Measurement]) -> float:
    """Requests per CPU-second of everything the run used (server, databases,
    generator): a figure the neighbours' load hardly moves."""
    return statistics.fmean(m.rate / m.cores_used for m in runs)


def latency(
    world: World, files: dict, rate: float, target: str = "home"
) -> load.Measurement:
    """Open-loop latency at ``rate``; ``target`` "noop" measures the no-op
    route at the same rate: the tail the machine and gunicorn add anyway."""
    service = "noop" if target == "noop" else "api"
    boots = world.services[service].boots()
    m = load.open_loop(
        world.ports[service],
        files[target],
        world.profile.latency_s,
        rate,
        world.cpu_meters(service),
    )
    m.counters["worker_restarts"] = world.services[service].boots() - boots
    return m
