"""A small HTTP/1.1 load generator on asyncio, for when wrk is missing and for
open-loop latency (a fixed request rate, which wrk cannot do).

``python -m bench.pyload closed|open PORT REQUESTS_FILE DURATION_S N`` prints one
JSON line. Closed loop: N connections, each sends its next request when the
last answer arrived (throughput). Open loop: N requests per second on a fixed
schedule; latency counts from the scheduled send time, so a stalled server
cannot hide its queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

import orjson

MAX_OPEN_CONNECTIONS = 256


def load_requests(path: str, port: int) -> list[bytes]:
    """Raw requests from the lines ``METHOD\\tPATH\\tTOKEN\\tBODY``."""
    out = []
    with open(path) as handle:
        for line in handle:
            method, target, token, body = line.rstrip("\n").split("\t", 3)
            head = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
            if token:
                head.append(f"Authorization: Bearer {token}")
            if body:
                head.append("Content-Type: application/json")
            if body or method == "POST":
                head.append(f"Content-Length: {len(body.encode())}")
            out.append(("\r\n".join(head) + "\r\n\r\n" + body).encode())
    return out


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1e6),
        "mean": round(sum(ordered) / len(ordered) * 1e6, 1),
    }


class Connection:
    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def send(self, raw: bytes) -> int:
        """One exchange; reconnects once if the server closed a kept-alive socket."""
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(
                    "127.0.0.1", self.port
                )
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        lower = head.lower()
        length = 0
        marker = lower.find(b"\r\ncontent-length:")
        if marker >= 0:
            end = lower.index(b"\r\n", marker + 2)
            length = int(lower[marker + 17 : end])
        await self.reader.readexactly(length)
        if b"\r\nconnection: close" in lower:
            self.close()
        return int(head[9:12])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Tally:
    def __init__(self):
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.io_errors = 0

    def result(self, duration_s: float, **extra) -> dict:
        bad = sum(n for s, n in self.statuses.items() if not 200 <= s < 400)
        return {
            "requests": len(self.latencies),
            "duration_us": round(duration_s * 1e6),
            "errors": {"status": bad, "io": self.io_errors},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "latency_us": percentiles(self.latencies),
            **extra,
        }

    async def exchange(self, conn: Connection, raw: bytes, since: float) -> None:
        try:
            status = await conn.send(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.io_errors += 1
            conn.close()
            return
        self.latencies.append(time.perf_counter() - since)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def closed_loop(port: int, requests: list[bytes], seconds: float, conns: int):
    tally, cycle = Tally(), itertools.cycle(requests)
    started = time.perf_counter()
    deadline = started + seconds

    async def client():
        conn = Connection(port)
        while time.perf_counter() < deadline:
            await tally.exchange(conn, next(cycle), time.perf_counter())
        conn.close()

    await asyncio.gather(*(client() for _ in range(conns)))
    return tally.result(time.perf_counter() - started)


async def open_loop(port: int, requests: list[bytes], seconds: float, rate: float):
    tally, idle = Tally(), asyncio.Queue()
    opened, tasks = 0, []

    async def one(raw: bytes, scheduled: float):
        nonlocal opened
        if idle.empty() and opened < MAX_OPEN_CONNECTIONS:
            opened += 1
            conn = Connection(port)
        else:
            conn = await idle.get()
        await tally.exchange(conn, raw, scheduled)
        idle.put_nowait(conn)

    started = time.perf_counter()
    total = int(seconds * rate)
    for k, raw in zip(range(total), itertools.cycle(requests), strict=False):
        scheduled = started + k / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(raw, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    elapsed = time.perf_counter() - started
    return tally.result(elapsed, offered_rate=rate, connections=opened)


def main(argv: list[str]) -> int:
    mode, port, path, seconds, n = argv
    requests = load_requests(path, int(port))
    if mode == "closed":
        run = closed_loop(int(port), requests, float(seconds), int(n))
    else:
        run = open_loop(int(port), requests, float(seconds), float(n))
    result = asyncio.run(run)
    sys.stdout.write("BENCHJSON " + orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
