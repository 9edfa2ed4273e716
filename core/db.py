"""The PostgreSQL connection pool, created late and bound to settings.

Connection budget per pod: API = WEB_WORKERS x WEB_THREADS, worker = processes x
threads (+1 for the outbox relay). (API + worker pods) x that must stay below the
server's max_connections (100 by default), so DB_POOL_SIZE caps each process.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg2
import psycopg2.errorcodes
from playhouse.postgres_ext import PooledPostgresqlExtDatabase

from core.settings import Settings

T = TypeVar("T")

# Retry transactions that lost a deadlock or serialization race: the loser can
# safely run again because nothing of it was committed.
RETRYABLE_PGCODES = {
    psycopg2.errorcodes.DEADLOCK_DETECTED,
    psycopg2.errorcodes.SERIALIZATION_FAILURE,
}

database = PooledPostgresqlExtDatabase(None, autoconnect=True)


def init_database(settings: Settings) -> PooledPostgresqlExtDatabase:
    """Bind the module-level database object to ``settings`` (idempotent)."""
    database.init(
        settings.database_dsn,
        max_connections=settings.db_pool_size,
        stale_timeout=300,
        timeout=10,
        options=f"-c statement_timeout={settings.db_statement_timeout_ms}",
        connect_timeout=5,
    )
    return database


def pgcode(ex: BaseException) -> str | None:
    """The SQLSTATE behind a peewee or psycopg2 error, if any."""
    orig = getattr(ex, "orig", None) or getattr(ex, "__cause__", None) or ex
    return getattr(orig, "pgcode", None)


def constraint_name(ex: BaseException) -> str:
    orig = getattr(ex, "orig", None) or getattr(ex, "__cause__", None) or ex
    diag = getattr(orig, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def in_transaction(fn: Callable[[], T], attempts: int = 5) -> T:
    """Run ``fn`` in a transaction, retrying deadlock/serialization losers."""
    for attempt in range(attempts):
        try:
            with database.atomic():
                return fn()
        except Exception as ex:  # peewee wraps psycopg2 errors
            if pgcode(ex) not in RETRYABLE_PGCODES or attempt == attempts - 1:
                raise
            time.sleep(0.005 * (2**attempt))
    raise AssertionError("unreachable")


_prepared: dict[tuple[int, int], set[str]] = {}


@functools.lru_cache(maxsize=256)
def _row_type(columns: tuple[str, ...]) -> type:
    # rename: a column without a usable name (``?column?``) becomes _N, so
    # only queries that name their columns can be read by name
    return collections.namedtuple("Row", columns, rename=True)


def named_rows(cursor) -> list:
    """The cursor's rows as namedtuples named by its columns (read by name,
    never by position: a reordered SELECT list cannot shift a field)."""
    row = _row_type(tuple(column.name for column in cursor.description))
    return [row._make(values) for values in cursor.fetchall()]


def fetchall_prepared(name: str, sql: str, params: tuple) -> list:
    """Run ``sql`` (with $1.. placeholders) as a server-side prepared statement.

    For hot queries whose planning costs more than their execution: each pooled
    connection prepares the statement once and then only executes it.
    """
    conn = database.connection()
    key = (id(conn), conn.info.backend_pid)
    names = _prepared.setdefault(key, set())
    if name not in names:
        database.execute_sql(f"PREPARE {name} AS {sql}")
        names.add(name)
    placeholders = ", ".join(["%s"] * len(params))
    return named_rows(database.execute_sql(f"EXECUTE {name} ({placeholders})", params))


# Hand-written SQL is kept for the hot paths only (see README, "Queries");
# everything else is a query chain over ``core.models``.
def fetchall(sql: str, params: tuple | list | dict = ()) -> list:
    return named_rows(database.execute_sql(sql, params))


def fetchone(sql: str, params: tuple | list | dict = ()):
    rows = fetchall(sql, params)
    return rows[0] if rows else None


def execute(sql: str, params: tuple | list | dict = ()) -> int:
    """Run a statement and return its row count."""
    return database.execute_sql(sql, params).rowcount
