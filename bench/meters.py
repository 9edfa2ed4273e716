"""CPU meters: seconds of CPU used so far by one part of the system.

A load run reads each before and after, so its report says where the cores
went: the server's process tree, the Postgres backends of this run's database,
the Redis server, and what is left of the machine's busy time (neighbours).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import psycopg2

from bench import infra, server

# A reading: CPU seconds by process (or any stable key); a run's use is the sum
# of after - before over the keys present after (exited processes drop out).
Meter = Callable[[], dict]


def service(svc: server.Service) -> Meter:
    return lambda: {svc.proc.pid: svc.cpu_seconds()}


def used(before: dict, after: dict) -> float:
    return sum(max(0.0, v - before.get(k, 0.0)) for k, v in after.items())


def _pid_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / server.CLK_TCK


def postgres(database: str) -> Meter:
    """Backends connected to ``database`` (those alive when read)."""

    def read() -> dict:
        conn = psycopg2.connect(infra.PG_ADMIN)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
                )
                pids = [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
        return {pid: _pid_seconds(pid) for pid in pids}

    return read


def redis_server(client) -> Meter:
    def read() -> dict:
        info = client.info("cpu")
        return {"redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"])}

    return read


def redis_meters(client) -> dict[str, Meter]:
    """Redis CPU meters: "redis" for one server; on a cluster "redis@<port>"
    for every node (replicas too: they apply every write), "@primary" marking
    the masters, so that figures can sum them or compare the masters."""
    if not hasattr(client, "get_nodes"):
        return {"redis": redis_server(client)}
    return {
        f"redis@{node.port}{'@primary' if node.server_type == 'primary' else ''}": (
            redis_server(node.redis_connection)
        )
        for node in client.get_nodes()
    }


def rabbitmq() -> Meter:
    """The RabbitMQ server's CPU: every ``beam.smp`` process (the machine's
    broker: other vhosts' traffic, e.g. a neighbour's tests, counts too)."""

    def read() -> dict:
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/comm") as handle:
                    if handle.read().strip() != "beam.smp":
                        continue
            except OSError:
                continue
            found[int(pid)] = _pid_seconds(int(pid))
        return found

    return read


def machine() -> dict:
    """Busy core-seconds of the whole machine (key "busy") and wall seconds."""
    busy, total = server.machine_busy()
    return {"busy": busy, "wall": total / (os.cpu_count() or 1)}


def redis_work(client) -> dict[str, int]:
    """Commands Redis ran, their own run time, and client reads it served
    (about one per round trip), summed over the nodes."""
    nodes = (
        [n.redis_connection for n in client.get_nodes()]
        if hasattr(client, "get_nodes")
        else [client]
    )
    totals = {"redis_commands": 0, "redis_reads": 0, "redis_command_us": 0}
    for node in nodes:
        info = node.info("stats")
        totals["redis_commands"] += int(info["total_commands_processed"])
        totals["redis_reads"] += int(info.get("total_reads_processed", 0))
        # the commands' own run time; the rest of Redis's CPU is its I/O
        stats = node.info("commandstats").values()
        totals["redis_command_us"] += sum(int(s["usec"]) for s in stats)
    return totals
