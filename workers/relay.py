"""The outbox relay: publishes committed jobs to the broker, at least once.

Runs as a thread in every worker process. It claims due rows with
``FOR UPDATE SKIP LOCKED`` (so relays on many pods share the work), publishes each
as a Dramatiq message whose id is the row's ``message_id``, and deletes the row
in the same transaction. A crash between publish and commit re-sends the
message, which the idempotent actors absorb. While the broker is down, rows wait
with exponential backoff. ``LISTEN outbox`` wakes the relay as soon as a job
commits; a short poll covers missed notifications.
"""

from __future__ import annotations

import logging
import select
import threading

import dramatiq
import psycopg2
from dramatiq import Message

from core import metrics
from core.settings import Settings

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60


class OutboxRelay:
    def __init__(self, settings: Settings, broker: dramatiq.Broker):
        self._settings = settings
        self._broker = broker
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

    def _connect(self):
        conn = psycopg2.connect(self._settings.database_dsn, connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("LISTEN outbox")
        return conn

    def _run(self) -> None:
        listener = None
        while not self._stop.is_set():
            try:
                if listener is None:
                    listener = self._connect()
                while self.relay_once() == self._settings.outbox_batch:
                    pass  # a full batch: there may be more right away
                self._wait(listener)
            except Exception as ex:  # database away: back off and reconnect
                log.warning("outbox relay: %s: %s", type(ex).__name__, ex)
                for conn in (listener, self._conn):
                    if conn is not None:
                        conn.close()
                listener = self._conn = None
                self._stop.wait(2)

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
        conn = self._conn
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id, message_id::text, queue_name, actor_name, args, options"
                " FROM outbox WHERE available_at <= now() ORDER BY id"
                " LIMIT %s FOR UPDATE SKIP LOCKED",
                (self._settings.outbox_batch,),
            )
            rows = cur.fetchall()
            published = []
            for row in rows:
                if not self._publish(cur, row):
                    break  # broker away: keep the rest for later
                published.append(row[0])
            if published:
                cur.execute("DELETE FROM outbox WHERE id = ANY(%s)", (published,))
            metrics.OUTBOX_RELAYED.inc(len(published))
            return len(published)

    def _publish(self, cur, row) -> bool:
        row_id, message_id, queue_name, actor_name, args, options = row
        message = Message(
            queue_name=queue_name,
            actor_name=actor_name,
            args=tuple(args),
            kwargs={},
            options=dict(options),
            message_id=message_id,
        )
        try:
            self._broker.enqueue(message)
            return True
        except Exception as ex:
            log.warning("outbox relay: broker refused %s: %s", actor_name, ex)
            cur.execute(
                "UPDATE outbox SET attempts = attempts + 1,"
                " available_at = now() + make_interval(secs => least(%s,"
                " power(2, attempts)::int)) WHERE id = %s",
                (MAX_BACKOFF_S, row_id),
            )
            return False


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
