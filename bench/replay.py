"""What a busy Redis pays per read: the read path's round trips, recorded
from the real code, sent again by many connections at once.

At the read rounds' load (two cores shared by gunicorn, wrk, Postgres and
Redis) Redis wakes for one client at a time, and a wake-up's system calls
cost it more than the commands: the round rounds' "Redis CPU per read"
measures that. A node shared by many API pods serves many clients per
wake-up. So home and user reads are recorded once, byte for byte, through the
app itself (falcon's test client, production middleware: the token's check,
the rate limiter), after a warm-up pass fills the process's own caches, and
sent again over ``connections`` sockets with only a RESP reader on the client
side. Redis's CPU over the replay divided by the reads replayed is its cost
per read at that concurrency. Single Redis only (a cluster's pipelines would
have to be split by node as the client does).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import hiredis
import redis
from falcon import testing
from redis.client import Pipeline

from bench import world as world_

CONNECTIONS = (1, 8, 64)


class _RecordingPipeline(Pipeline):
    trips: list

    def _execute_pipeline(self, connection, commands, raise_on_error):
        packed = b"".join(connection.pack_commands([args for args, _ in commands]))
        self.trips.append((packed, len(commands)))
        return super()._execute_pipeline(connection, commands, raise_on_error)


class RecordingRedis(redis.Redis):
    """A client that notes every round trip it makes: (bytes sent, replies)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trips: list[tuple[bytes, int]] = []
        self._packer = redis.Connection()

    def pipeline(self, transaction=True, shard_hint=None):
        pipe = _RecordingPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.trips = self.trips
        return pipe

    def execute_command(self, *args, **options):
        self.trips.append((b"".join(self._packer.pack_command(*args)), 1))
        return super().execute_command(*args, **options)


def record(w: world_.World, paths: list[tuple[str, str]]) -> list[list]:
    """The round trips of each (path, token) read, from a warm process."""
    from api.app import create_app
    from core import container

    client = RecordingRedis.from_url(w.settings.redis_dsn)
    app = testing.TestClient(
        create_app(w.settings, container.build(w.settings, client=client))
    )
    reads = []
    for attempt in ("warm-up", "record"):
        for path, token in paths:
            client.trips.clear()
            got = app.simulate_get(path, headers={"Authorization": f"Bearer {token}"})
            if got.status_code != 200:
                raise AssertionError(f"{attempt} {path}: {got.status_code} {got.text}")
            if attempt == "record":
                reads.append(list(client.trips))
    return reads


async def _connection(port, db, reads, start, deadline, done):
    stream_in, stream_out = await asyncio.open_connection("127.0.0.1", port)
    parser = hiredis.Reader()

    async def trip(payload: bytes, replies: int) -> None:
        stream_out.write(payload)
        for _ in range(replies):
            while (reply := parser.gets()) is False:
                parser.feed(await stream_in.read(1 << 16))
            if isinstance(reply, hiredis.ReplyError):
                raise AssertionError(f"replayed command failed: {reply}")

    await trip(b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(str(db)), db), 1)
    index = start
    while time.monotonic() < deadline:
        for payload, replies in reads[index % len(reads)]:
            await trip(payload, replies)
        done[0] += 1
        index += 1
    stream_out.close()


def replay(client, port: int, db: int, reads, connections: int, seconds: float):
    """Reads per second and Redis CPU per read (us) over ``seconds``."""
    done = [0]

    async def main():
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _connection(port, db, reads, k * 7, deadline, done)
                for k in range(connections)
            )
        )

    before, started = _cpu(client), time.monotonic()
    asyncio.run(main())
    used, elapsed = _cpu(client) - before, time.monotonic() - started
    return {
        "connections": connections,
        "reads_per_s": round(done[0] / elapsed),
        "redis_us_per_read": round(used / max(done[0], 1) * 1e6, 1),
    }


def _cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(w: world_.World, seconds: float) -> dict | None:
    """Per kind of read: round trips and commands per read, and the replay
    at each of CONNECTIONS."""
    client = w.store.redis
    if hasattr(client, "get_nodes"):
        return None
    kw = client.connection_pool.connection_kwargs
    sample = w.readers[:200]
    paths = {
        "home": [("/timeline/home", w.tokens[u]) for u in sample],
        "user": [
            (
                f"/timeline/user?username={quote(w.data.usernames[target])}",
                w.tokens[viewer],
            )
            for viewer, target in zip(sample, w.user_targets, strict=False)
        ],
    }
    out = {}
    for kind, requests in paths.items():
        reads = record(w, requests)
        trips = [len(r) for r in reads]
        out[kind] = {
            "round_trips_per_read": sum(trips) / len(trips),
            "commands_per_read": sum(n for r in reads for _, n in r) / len(reads),
            "replays": [
                replay(client, kw["port"], kw.get("db", 0), reads, c, seconds)
                for c in CONNECTIONS
            ],
        }
    return out
