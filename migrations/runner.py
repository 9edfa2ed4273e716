"""Apply numbered migrations in order, exactly once, safely from many pods.

Each migration is a module ``NNNN_name.py`` in this package with ``up(db)``.
Applied versions are recorded in ``schema_migrations``; a Postgres advisory lock
serialises concurrent runners (several pods starting at once). Migrations follow
expand/contract: a release only adds what the previous release can ignore, so
old pods keep working during a rolling upgrade.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time

from playhouse.migrate import PostgresqlMigrator

import migrations
from core.db import database

LOCK_KEY = 0x7477_6D69  # "twmi": arbitrary, fixed advisory lock id
_NAME = re.compile(r"^(\d{4})_\w+$")


def available() -> list[tuple[int, str]]:
    """(version, module name) of every migration shipped with this code."""
    found = []
    for info in pkgutil.iter_modules(migrations.__path__):
        match = _NAME.match(info.name)
        if match:
            found.append((int(match.group(1)), info.name))
    return sorted(found)


def _ensure_table() -> None:
    database.execute_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )


def applied() -> set[int]:
    exists = database.execute_sql(
        "SELECT to_regclass('schema_migrations') IS NOT NULL"
    ).fetchone()[0]
    if not exists:
        return set()
    rows = database.execute_sql("SELECT version FROM schema_migrations").fetchall()
    return {row[0] for row in rows}


def pending() -> list[tuple[int, str]]:
    done = applied()
    return [(v, name) for v, name in available() if v not in done]


def migrate(log=print) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    done_now = []
    with database.connection_context():
        database.execute_sql("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            _ensure_table()
            migrator = PostgresqlMigrator(database)
            for version, name in pending():
                module = importlib.import_module(f"migrations.{name}")
                with database.atomic():
                    module.up(database, migrator)
                    database.execute_sql(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                log(f"applied {name}")
                done_now.append(name)
        finally:
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return done_now


def wait_until_current(timeout_s: float, log=print) -> bool:
    """Block until the database is reachable and fully migrated."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with database.connection_context():
                missing = pending()
            if not missing:
                return True
            log(f"waiting for migrations: {', '.join(n for _, n in missing)}")
        except Exception as ex:  # database not up yet: keep waiting
            log(f"waiting for the database: {type(ex).__name__}")
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
