"""Prometheus metrics shared by the API and the workers.

Metric objects are module globals, as prometheus_client intends. Under gunicorn
or several Dramatiq processes, set PROMETHEUS_MULTIPROC_DIR so every process
writes its samples to files that the scrape aggregates.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight", "Requests being served", multiprocess_mode="livesum"
)
FANOUT_LAG = Histogram(
    "timeline_fanout_lag_seconds",
    "Tweet commit to last follower written",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FANOUT_ENTRIES = Counter(
    "timeline_fanout_entries_total", "Home timeline entries written by fan-out"
)
PULL_MERGES = Counter(
    "timeline_pull_merges_total", "Home reads that merged pulled authors"
)
TIMELINE_REBUILDS = Counter(
    "timeline_rebuilds_total", "Timelines rebuilt from Postgres", ["kind"]
)
POSTGRES_PAGES = Counter(
    "timeline_postgres_pages_total",
    "Timeline pages (partly) served from Postgres",
    ["kind"],
)
LOGINS = Counter("auth_logins_total", "Login attempts", ["outcome"])
REFRESH_REUSE = Counter("auth_refresh_reuse_total", "Refresh-token reuse detections")
OUTBOX_RELAYED = Counter("outbox_relayed_total", "Outbox jobs published")


def render(multiproc_dir: str = "") -> tuple[bytes, str]:
    """The scrape body for this process, or for all processes in multiproc mode."""
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
