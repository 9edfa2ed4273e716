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
# Label values come from this fixed set only: a client can send any token as a
# method, and each new one would add a time series per route and bucket.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
UNMATCHED_ROUTE = "unmatched"


def http_labels(method: str, route: str | None, status: int) -> tuple:
    """(method, route, status) labels with a bounded set of values."""
    return (
        method if method in HTTP_METHODS else "other",
        route or UNMATCHED_ROUTE,
        status,
    )


DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 when the dependency answered this process's last check, else 0",
    ["dependency"],
    multiprocess_mode="livemostrecent",
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
CACHE_PAGES = Counter(
    "read_cache_pages_total", "Timeline pages rendered by Redis alone (no SQL)"
)
CACHE_MISSES = Counter(
    "read_cache_misses_total",
    "Timeline pages the read cache could not render alone, by what it lacked",
    ["reason"],
)
CACHE_SOCIAL_LOADS = Counter(
    "read_cache_social_loads_total", "Readers' social hashes loaded from Postgres"
)
POSTGRES_PAGES = Counter(
    "timeline_postgres_pages_total",
    "Timeline pages (partly) served from Postgres",
    ["kind"],
)
LOGINS = Counter("auth_logins_total", "Login attempts", ["outcome"])
REFRESH_REUSE = Counter("auth_refresh_reuse_total", "Refresh-token reuse detections")
RATE_LIMITED = Counter(
    "http_rate_limited_total", "Requests refused with 429, by bucket", ["bucket"]
)
OUTBOX_RELAYED = Counter("outbox_relayed_total", "Outbox jobs published")

# Job metrics. The names and labels are those of Dramatiq's own Prometheus
# middleware, so its dashboards work; ours writes them into the one multiprocess
# directory from settings instead of Dramatiq's environment-configured one.
_JOB = ["queue_name", "actor_name"]
MESSAGES = Counter("dramatiq_messages", "Messages processed", _JOB)
MESSAGE_ERRORS = Counter("dramatiq_message_errors", "Messages that raised", _JOB)
MESSAGE_RETRIES = Counter("dramatiq_message_retries", "Messages retried", _JOB)
MESSAGE_REJECTS = Counter("dramatiq_message_rejects", "Messages dead-lettered", _JOB)
MESSAGES_IN_PROGRESS = Gauge(
    "dramatiq_messages_inprogress",
    "Messages being processed",
    _JOB,
    multiprocess_mode="livesum",
)
MESSAGE_DURATION = Histogram(
    "dramatiq_message_duration_milliseconds",
    "Time spent processing a message",
    _JOB,
    buckets=(5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000),
)
# RabbitMQ cannot tell the age of a queue's head without consuming it, so the
# workers measure each message's wait (enqueue or eta -> start) as it is taken.
QUEUE_WAIT = Histogram(
    "queue_wait_seconds",
    "Time a message waited in its queue before a worker took it",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
QUEUE_LAST_DEQUEUE = Gauge(
    "queue_last_dequeue_timestamp_seconds",
    "When a worker last took a message from the queue (Unix time)",
    ["queue"],
    multiprocess_mode="max",
)


def render(multiproc_dir: str = "") -> tuple[bytes, str]:
    """The scrape body for this process, or for all processes in multiproc mode."""
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
