"""``python -m cli run``: the whole service locally (API + worker), set up first.

The API listens on HOST (127.0.0.1 unless told otherwise); a process that dies
is restarted with backoff.
"""

from __future__ import annotations

import argparse
import os
import sys

import psycopg2
from psycopg2 import sql

from cli import processes
from core import keyfiles
from core.db import init_database
from core.settings import PROJECT_ROOT, Settings
from migrations import runner


def ensure_database(settings: Settings) -> None:
    """Create the configured database if the server lacks it (local convenience)."""
    try:
        psycopg2.connect(settings.database_dsn, connect_timeout=5).close()
        return
    except psycopg2.OperationalError as ex:
        if "does not exist" not in str(ex):
            raise
    dsn = psycopg2.extensions.parse_dsn(settings.database_dsn)
    name = dsn.pop("dbname")
    conn = psycopg2.connect(**dict(dsn, dbname="postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    print(f"created database {name}")


def prepare(settings: Settings) -> None:
    """Dev keypair, database and schema: everything the processes need."""
    if not settings.is_production and keyfiles.ensure_dev_keypair(
        settings.jwt_private_key_path, settings.jwt_public_keys_path
    ):
        print(f"generated a dev JWT keypair in {settings.jwt_private_key_path}")
    ensure_database(settings)
    init_database(settings)
    runner.migrate()


def run(args) -> int:
    return serve(args, Settings.from_env(), dict(os.environ))


def serve(args, settings: Settings, env: dict[str, str], **options) -> int:
    """Prepare, then run API + worker with ``env`` until Ctrl-C (``run`` and
    ``standalone`` share it; ``options``: metrics_dir, on_start)."""
    prepare(settings)
    env["PROMETHEUS_MULTIPROC_DIR"] = processes.prepare_metrics_dir(
        options.get("metrics_dir") or PROJECT_ROOT / "var" / "metrics"
    )
    print(
        f"serving on http://{processes.bind_address(settings)} (Ctrl-C stops)",
        flush=True,
    )
    return processes.supervise(
        {
            "api": processes.api_command(
                settings, bind=processes.bind_address(settings)
            ),
            "worker": processes.worker_command(args.processes, args.threads),
        },
        env,
        on_start=options.get("on_start"),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="API + worker on this machine")
    run_parser.add_argument("--processes", type=int, default=1)
    run_parser.add_argument("--threads", type=int, default=4)
    commands.add_parser("prepare", help="keys, database and migrations only")
    standalone_parser = commands.add_parser(
        "standalone",
        help="like run, starting embedded Postgres/Redis for unreachable services",
    )
    standalone_parser.add_argument("--processes", type=int, default=1)
    standalone_parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(Settings.from_env())
        return 0
    if args.command == "standalone":
        from cli import standalone  # needs the optional standalone packages

        return standalone.run(args, serve)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
