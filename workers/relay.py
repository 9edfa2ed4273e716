"""The outbox relay: publishes committed jobs to the broker, at least once.

A thread in every worker process: claims due rows (``FOR UPDATE SKIP LOCKED``),
publishes them in one confirmed batch and deletes them in the same transaction.
**Busy** while jobs keep coming (polls every ``BUSY_POLL_S``, or ``LOADED_POLL_S``
under load); **asleep** after ``IDLE_AFTER_S`` without one, on ``LISTEN outbox``.
Why: docs/design.md#writes-never-lose-a-job-the-transactional-outbox
"""

from __future__ import annotations

import logging
import select
import threading
import time

import dramatiq
import psycopg2
import psycopg2.extras
from dramatiq import Message

from core import metrics
from core.outbox import FANOUT_TWEET, FANOUT_TWEETS, RELAY_SLEEP_LOCK
from core.settings import Settings
from workers.broker import BatchPublisher

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60
BUSY_POLL_S = 0.01  # between polls while jobs keep coming
# Under load (a poll found LOADED_BATCH jobs or more), wait longer between
# polls: the worker's cost is per batch (one claim, one broker transaction,
# one fanout_tweets message), so bigger batches make each job cheaper, and
# at that rate the extra 15 ms is a small part of the fan-out's delay.
LOADED_BATCH = 3
LOADED_POLL_S = 0.025
IDLE_AFTER_S = 0.05  # this long without a job: sleep until notified
FANOUT_BATCH_MAX = 100  # tweets per FANOUT_TWEETS message


class OutboxRelay:
    def __init__(self, settings: Settings, broker: dramatiq.Broker):
        self._settings = settings
        self._publisher = BatchPublisher(broker)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn = None  # the relay's own connection, kept between batches

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="outbox-relay", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def listen(self):
        """A connection of its own that LISTENs for writers' wake-ups."""
        conn = psycopg2.connect(self._settings.database_dsn, connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            # the idle flag is a hint, rebuilt by the next relay: no WAL flush
            cur.execute("SET synchronous_commit = off")
            cur.execute("LISTEN outbox")
        return conn

    def _run(self) -> None:
        listener, busy = None, True
        while not self._stop.is_set():
            try:
                if listener is None:
                    listener = self.listen()
                if busy:
                    self._busy()
                busy = self.sleep(listener)
            except Exception as ex:  # database away: back off and reconnect
                log.warning("outbox relay: %s: %s", type(ex).__name__, ex)
                for conn in (listener, self._conn):
                    if conn is not None:
                        conn.close()
                listener = self._conn = None
                busy = True
                self._stop.wait(2)
        self.close()

    def close(self) -> None:
        """Close the broker and database connections (a stopped relay's)."""
        self._publisher.close()
        if self._conn is not None:
            self._conn.close()

    def _busy(self) -> None:
        """Relay until no job has come for IDLE_AFTER_S."""
        last_job = time.monotonic()
        while not self._stop.is_set():
            relayed = self.relay_once()
            if relayed == self._settings.outbox_batch:
                continue  # a full batch: there may be more right away
            now = time.monotonic()
            if relayed:
                last_job = now
            elif now - last_job >= IDLE_AFTER_S:
                return
            loaded = relayed >= LOADED_BATCH
            self._stop.wait(LOADED_POLL_S if loaded else BUSY_POLL_S)

    def sleep(self, listener) -> bool:
        """Announce sleep, then wait for a NOTIFY or the poll; True when jobs
        were relayed meanwhile (back to busy)."""
        with listener.cursor() as cur:
            # The next writer clears the flag and wakes us (migration 0004).
            cur.execute("UPDATE outbox_relay_state SET idle = true")
            # Wait for every writer that may have read idle = false to commit;
            # any later one sees the flag and notifies.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (RELAY_SLEEP_LOCK,))
        if self.relay_once():
            return True
        self._wait(listener)
        self._publisher.keepalive()
        return self.relay_once() > 0

    def _wait(self, listener) -> None:
        ready, _, _ = select.select([listener], [], [], self._settings.outbox_poll_s)
        if ready:
            listener.poll()
            listener.notifies.clear()

    def relay_once(self) -> int:
        """Publish one batch of due jobs; returns how many were published."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(
                self._settings.database_dsn, connect_timeout=5
            )
            self._conn.autocommit = True  # BEGIN and COMMIT travel with the SQL
            with self._conn.cursor() as cur:
                # A delete lost in a crash re-sends its jobs, which the
                # idempotent actors absorb: no need to wait for its WAL flush.
                cur.execute("SET synchronous_commit = off")
        # rows by column name (namedtuples)
        with self._conn.cursor(cursor_factory=psycopg2.extras.NamedTupleCursor) as cur:
            cur.execute(_CLAIM, (self._settings.outbox_batch,))
            rows = cur.fetchall()
            if not rows:
                cur.execute("COMMIT")
                return 0
            try:
                published = self._publish(cur, rows)
            except BaseException:
                self._conn.close()  # rolls back: the rows stay for the next try
                raise
            metrics.OUTBOX_RELAYED.inc(published)
            return published

    def _publish(self, cur, rows) -> int:
        """Publish claimed rows, then delete the confirmed ones and back off
        the rest, ending the transaction in the same round trip."""
        batch = messages(rows)
        row_ids = {m.message_id: ids for m, ids in batch}  # message -> its rows
        try:
            sent = self._publisher.publish([m for m, _ in batch])
        except Exception as ex:  # broker away: every row waits and retries
            log.warning("outbox relay: broker refused %d jobs: %s", len(rows), ex)
            sent = []
        published = [i for m in sent for i in row_ids.pop(m.message_id)]
        failed = [i for ids in row_ids.values() for i in ids]  # not confirmed
        cur.execute(
            "DELETE FROM outbox WHERE id = ANY(%s);"
            " UPDATE outbox SET attempts = attempts + 1,"
            " available_at = now() + make_interval(secs => least(%s,"
            " power(2, attempts)::int)) WHERE id = ANY(%s);"
            " COMMIT",
            (published, MAX_BACKOFF_S, failed),
        )
        return len(published)


# Claims a batch and leaves its transaction open: the connection autocommits,
# so BEGIN travels with the SELECT and COMMIT with the DELETE. Hand-written
# like the rest of the relay's SQL: a peewee query cannot carry a BEGIN, and
# this runs every few milliseconds on the relay's own connection.
_CLAIM = (
    "BEGIN;"
    " SELECT id, message_id::text AS message_id, queue_name, actor_name, args,"
    " options"
    " FROM outbox WHERE available_at <= now() ORDER BY id"
    " LIMIT %s FOR UPDATE SKIP LOCKED"
)


# Why: docs/design.md#fan-out-batches-and-repeated-chunks
def messages(rows) -> list[tuple[Message, list[int]]]:
    """The batch's messages, each with the outbox rows it carries."""
    out, fanouts = [], []
    for row in rows:
        if (
            row.actor_name == FANOUT_TWEET.actor_name
            and row.queue_name == FANOUT_TWEET.queue_name
        ):
            fanouts.append(row)
        else:
            out.append((_message(row), [row.id]))
    for start in range(0, len(fanouts), FANOUT_BATCH_MAX):
        group = fanouts[start : start + FANOUT_BATCH_MAX]
        if len(group) == 1:
            out.append((_message(group[0]), [group[0].id]))
        else:
            out.append((_combined(group), [row.id for row in group]))
    return out


def _combined(rows) -> Message:
    """One FANOUT_TWEETS message for several FANOUT_TWEET rows; its id is the
    first row's, and the rows' request ids travel in ``request_ids``."""
    request_ids = [row.options.get("request_id") for row in rows]
    options = {"request_ids": request_ids} if any(request_ids) else {}
    return Message(
        queue_name=FANOUT_TWEETS.queue_name,
        actor_name=FANOUT_TWEETS.actor_name,
        args=([list(row.args) for row in rows],),
        kwargs={},
        options=options,
        message_id=rows[0].message_id,
    )


def _message(row) -> Message:
    return Message(
        queue_name=row.queue_name,
        actor_name=row.actor_name,
        args=tuple(row.args),
        kwargs={},
        options=dict(row.options),
        message_id=row.message_id,
    )


class RelayMiddleware(dramatiq.Middleware):
    """Starts the relay when a worker process boots, stops it on shutdown."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._relay: OutboxRelay | None = None

    def after_worker_boot(self, broker, worker):
        self._relay = OutboxRelay(self._settings, broker)
        self._relay.start()

    def before_worker_shutdown(self, broker, worker):
        if self._relay:
            self._relay.stop()
