"""Dramatiq middleware: database connections, job logs and job metrics."""

from __future__ import annotations

import logging
import os
import time

import dramatiq
from prometheus_client import multiprocess

from core import logs, metrics
from core.db import database
from core.settings import Settings
from workers import metrics_server

log = logging.getLogger("workers.jobs")


class DatabaseConnection(dramatiq.Middleware):
    """Give this thread's pooled connection back after each message."""

    def _release(self, *_args, **_kwargs):
        if not database.is_closed():
            database.close()

    after_process_message = _release
    after_skip_message = _release


class JobObservability(dramatiq.Middleware):
    """One JSON line per job, carrying the id of the request that caused it
    (of each, for a batch);
    Dramatiq's message metrics; queue waits; the pod's metrics server."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._running: dict[str, tuple[float, object]] = {}

    @property
    def forks(self):
        # Dramatiq's CLI runs this once per pod, beside the worker processes.
        return [metrics_server.serve]

    def after_process_boot(self, broker):
        logs.setup(self._settings.log_level)

    def before_process_message(self, broker, message):
        now = time.time()
        queued_ms = max(message.message_timestamp, message.options.get("eta", 0))
        metrics.QUEUE_WAIT.labels(message.queue_name).observe(
            max(0.0, now - queued_ms / 1000)
        )
        metrics.QUEUE_LAST_DEQUEUE.labels(message.queue_name).set(now)
        metrics.MESSAGES_IN_PROGRESS.labels(
            message.queue_name, message.actor_name
        ).inc()
        token = logs.bind(
            request_id=message.options.get("request_id"),
            message_id=message.message_id,
            **_batch_ids(message),
        )
        self._running[message.message_id] = (time.perf_counter(), token)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        self._finish(message, "ok" if exception is None else "failed")

    def after_skip_message(self, broker, message):
        self._finish(message, "skipped")

    def _finish(self, message, outcome: str) -> None:
        labels = (message.queue_name, message.actor_name)
        # A message skipped by an earlier middleware (too old) never started here.
        started, token = self._running.pop(message.message_id, (None, None))
        duration_ms = None
        if started is not None:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            metrics.MESSAGES_IN_PROGRESS.labels(*labels).dec()
            metrics.MESSAGE_DURATION.labels(*labels).observe(duration_ms)
        metrics.MESSAGES.labels(*labels).inc()
        if outcome == "failed":
            metrics.MESSAGE_ERRORS.labels(*labels).inc()
        log.log(
            logging.WARNING if outcome == "failed" else logging.INFO,
            "job %s %s",
            message.actor_name,
            outcome,
            extra=_job_fields(message, outcome=outcome, duration_ms=duration_ms),
        )
        if token is not None:
            logs.unbind(token)

    def after_enqueue(self, broker, message, delay):
        if "retries" in message.options:
            metrics.MESSAGE_RETRIES.labels(message.queue_name, message.actor_name).inc()

    def after_nack(self, broker, message):
        metrics.MESSAGE_REJECTS.labels(message.queue_name, message.actor_name).inc()
        log.warning(
            "job %s dead-lettered",
            message.actor_name,
            extra=_job_fields(message, outcome="dead_lettered"),
        )

    def after_worker_shutdown(self, broker, worker):
        if self._settings.metrics_dir:
            multiprocess.mark_process_dead(os.getpid(), self._settings.metrics_dir)


def _job_fields(message, **fields) -> dict:
    return {
        "actor": message.actor_name,
        "queue": message.queue_name,
        "message_id": message.message_id,
        "request_id": message.options.get("request_id"),
        "retries": message.options.get("retries", 0),
        **_batch_ids(message),
        **fields,
    }


def _batch_ids(message) -> dict:
    """A batched job (fanout_tweets) carries the request id of each of its
    tweets: its lines list them all."""
    request_ids = message.options.get("request_ids")
    return {"request_ids": [r for r in request_ids if r]} if request_ids else {}
