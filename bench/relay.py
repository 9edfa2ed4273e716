"""``python -m bench.relay``: the outbox relay's throughput, on its own.

Writes outbox rows into a database of the run's own, then times
``workers.relay.OutboxRelay.relay_once`` publishing them all to a RabbitMQ vhost
of the run's own, with no consumer. Two kinds of rows, in alternating rounds:
fan-outs (``fanout_tweet``, which the relay combines into one message per 100)
and a job that goes out as one message per row (``backfill_follow``). Run it
from two checkouts, interleaved, to compare two relays (bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import time

import orjson
import psycopg2

from bench import infra, loader
from core import outbox
from core.settings import Settings
from workers.broker import make_broker
from workers.relay import OutboxRelay

KINDS = {"fanout": outbox.FANOUT_TWEET, "one_per_row": outbox.BACKFILL_FOLLOW}


def _write(dsn: str, job: outbox.Job, n: int) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            outbox.INSERT_SELECT, [outbox.job_params(job, i, 1) for i in range(n)]
        )


def _round(settings: Settings, relay: OutboxRelay, job: outbox.Job, n: int) -> float:
    _write(settings.database_dsn, job, n)
    started = time.perf_counter()
    relayed = 0
    while relayed < n:
        relayed += relay.relay_once()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay")
    parser.add_argument("--jobs", type=int, default=2000, help="rows per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names = infra.Names(str(os.getpid()))
    infra.create(names)
    try:
        settings = Settings.from_env(
            {**os.environ, "DATABASE_URL": names.database_url}
            | {"BROKER_URL": names.broker_url, "BROKER_KIND": "rabbitmq"}
        )
        loader.migrate(settings)
        relay = OutboxRelay(settings, make_broker(settings))
        rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for _ in range(args.rounds):
            for kind, job in KINDS.items():
                rates[kind].append(round(_round(settings, relay, job, args.jobs), 1))
        summary = {k: {"best": max(v), "rates": v} for k, v in rates.items()}
        print(orjson.dumps(summary).decode())
    finally:
        infra.remove(names)


if __name__ == "__main__":
    main()
