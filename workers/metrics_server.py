"""The worker pod's metrics endpoint (WORKER_METRICS_PORT).

Dramatiq's CLI runs :func:`serve` as a forked process of its own (see
``JobObservability.forks``), so one server answers for all worker processes: it
aggregates their samples from PROMETHEUS_MULTIPROC_DIR and adds the queue and
outbox gauges, read at scrape time.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from core import logs
from core.db import init_database
from core.queue_stats import QueueStats
from core.settings import Settings

log = logging.getLogger(__name__)


def registry_for(settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry()
    if settings.metrics_dir:
        multiprocess.MultiProcessCollector(registry, path=settings.metrics_dir)
    registry.register(QueueStats(settings))
    return registry


def start(settings: Settings, port: int | None = None):
    """Serve in a background thread; returns (server, thread)."""
    init_database(settings)  # the outbox backlog is read from Postgres
    return start_http_server(
        settings.worker_metrics_port if port is None else port,
        registry=registry_for(settings),
    )


def serve() -> int:
    """Entry point of the fork process: serve until Dramatiq stops us."""
    settings = Settings.from_env()
    logs.setup(settings.log_level)
    if not settings.metrics_dir:
        log.warning(
            "PROMETHEUS_MULTIPROC_DIR is not set: only queue gauges are served; "
            "set it to aggregate the worker processes' metrics"
        )
    _, thread = start(settings)
    thread.join()
    return 0
