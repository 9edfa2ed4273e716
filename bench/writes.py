"""Tweet creates and logins through the API, and waiting for the workers."""

from __future__ import annotations

import time

import orjson
import pika
import psycopg2

from bench import load, meters
from bench.load import Request
from bench.world import PASSWORD, World
from core import outbox


def _body(value: dict) -> bytes:
    return orjson.dumps(value)


def create_requests(world: World):
    requests = [
        Request(
            "POST",
            "/tweet/create",
            world.tokens[u],
            _body({"tweet_content": f"bench tweet {k} from {u}: hello timeline"}),
        )
        for k, u in enumerate(world.creators)
    ]
    return load.write_requests(world.workdir, "create", requests)


def warm_tokens(world: World) -> None:
    """Each creator's token through the API a few times, as a client's token is
    during its 15 minutes: the creates then meet warm verified-token caches,
    not an RSA verification per first use in each process. An empty body is
    refused (400) right after authentication, so nothing is written."""
    requests = [
        Request("POST", "/tweet/create", world.tokens[u], b"{}") for u in world.creators
    ]
    path = load.write_requests(world.workdir, "warm", requests)
    p = world.profile
    load.closed(world.wrk, world.ports["api"], path, p.warmup_s, p.connections, {})


def creates(world: World) -> load.Measurement:
    """POST /tweet/create as many users (each commit + outbox row); the relay's
    broker (RabbitMQ) has a meter of its own."""
    path = create_requests(world)
    p = world.profile
    return load.closed(
        world.wrk,
        world.ports["api"],
        path,
        p.write_s,
        p.connections,
        {**world.cpu_meters(), "rabbitmq": meters.rabbitmq()},
    )


def logins(world: World) -> load.Measurement:
    names = world.data.usernames
    requests = [
        Request(
            "POST",
            "/auth/login",
            body=_body({"username": names[u], "password": PASSWORD}),
        )
        for u in world.readers
    ]
    path = load.write_requests(world.workdir, "login", requests)
    p = world.profile
    return load.closed(
        world.wrk,
        world.ports["api"],
        path,
        p.write_s,
        p.connections,
        world.cpu_meters(),
    )


def _queue_counts(channel_source, queues: list[str]) -> dict[str, int]:
    counts = {}
    for queue in queues:
        channel = channel_source.channel()
        try:
            counts[queue] = channel.queue_declare(
                queue, passive=True
            ).method.message_count
            channel.close()
        except pika.exceptions.ChannelClosedByBroker:  # not declared (yet)
            counts[queue] = 0
    return counts


def queues() -> list[str]:
    """Dramatiq's queues of this app and their delay (.DQ) and dead-letter (.XQ)."""
    return [f"{q}{suffix}" for q in outbox.QUEUES for suffix in ("", ".DQ", ".XQ")]


def drain(world: World, timeout_s: float = 300.0, poll_s: float = 0.25) -> dict:
    """Wait for quiet: outbox relayed, no ready message, the worker idle."""
    started = time.monotonic()
    worker = world.services["worker"]
    broker = pika.BlockingConnection(pika.URLParameters(world.names.broker_url))
    db = psycopg2.connect(world.settings.database_dsn)
    db.autocommit = True
    try:
        quiet, cpu = 0, worker.cpu_seconds()
        while quiet < 2:
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"jobs did not drain in {timeout_s}s")
            if not worker.alive():
                raise RuntimeError(f"the worker exited; see {worker.log}")
            time.sleep(poll_s)
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM outbox")
                rows = cur.fetchone()[0]
            counts = _queue_counts(broker, queues())
            ready = sum(n for q, n in counts.items() if not q.endswith(".XQ"))
            busy = worker.cpu_seconds() - cpu
            cpu += busy
            idle = busy < 0.1 * poll_s
            quiet = quiet + 1 if rows == 0 and ready == 0 and idle else 0
    finally:
        broker.close()
        db.close()
    dead = sum(n for q, n in counts.items() if q.endswith(".XQ"))
    return {"seconds": round(time.monotonic() - started, 2), "dead_letters": dead}
