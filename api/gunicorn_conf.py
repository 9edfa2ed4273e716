"""gunicorn settings, derived from the application's settings."""

import gc
from pathlib import Path

from gunicorn.glogging import Logger

from api import gunicorn_errors
from core import logs
from core.settings import Settings

_settings = Settings.from_env()

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = "gthread"
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel
# spreads new connections over them. On one shared socket, whichever worker
# was on a CPU accepted a whole burst of keep-alive connections (wrk's 16, an
# ingress's upstream pool) and served them on one core while its peer idled
# (tests/e2e/test_connection_balance.py; bench/README.md, "Unbalanced workers").
reuse_port = True
# Kubernetes sends SIGTERM and waits terminationGracePeriodSeconds; finish
# in-flight requests well within it.
graceful_timeout = 20
timeout = 30
keepalive = 5
accesslog = None  # request logs come from the app as JSON lines
logconfig_dict = logs.dict_config(_settings.log_level)  # gunicorn's own lines too


class AppAccessLogger(Logger):
    """gunicorn's logger, minus its access log (the app logs requests itself)."""

    # With logconfig_dict set, gunicorn would build every request's access-log
    # atoms only for the WARNING-level gunicorn.access logger to drop them
    # (bench/README.md, "Previous full run (10:54, 36a3cc7)").
    def access(self, resp, req, environ, request_time):
        return


logger_class = AppAccessLogger
# The control socket would live under $HOME, which is read-only in the
# cluster (read-only root filesystem) and unused by us.
control_socket_disable = True
# Recycling workers every few thousand requests cost more than it saved: at
# bench rates it restarted workers often, piling kept-alive clients on the
# survivor and emptying its caches (bench/README.md). Rarely, as a guard.
max_requests = 1_000_000
max_requests_jitter = 100_000


def on_starting(server):
    """Start with an empty multiprocess metrics directory: a restarted container
    keeps its emptyDir, and dead processes' live gauges would be summed in."""
    if _settings.metrics_dir:
        for stale in Path(_settings.metrics_dir).glob("*.db"):
            stale.unlink(missing_ok=True)


def when_ready(server):
    """Serve the workers' metrics from the master on METRICS_PORT: one target per
    pod whichever worker a scrape would have reached, and a port of its own
    that no Ingress routes (the API port answers 404 for /metrics)."""
    if not _settings.metrics_port:
        return
    if not _settings.metrics_dir:
        server.log.warning(
            "PROMETHEUS_MULTIPROC_DIR is not set: METRICS_PORT serves the master's "
            "own metrics only, not the workers'"
        )
    from api.metrics import serve_metrics

    try:
        server.metrics_server = serve_metrics(
            _settings.metrics_port, _settings.metrics_dir
        )
    except OSError as ex:
        # The API still serves; the failing scrape target is what alerts.
        server.log.error("metrics port %s: %s", _settings.metrics_port, ex)
        return
    server.log.info("metrics on port %s", _settings.metrics_port)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    if _settings.metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _settings.metrics_dir)


def post_worker_init(worker):
    """Move the just-loaded app out of the garbage collector's reach."""
    # It lives as long as the worker; the collector's full passes over it added
    # to the tail latency of whatever request they interrupted
    # (bench/README.md, "Previous full run (10:54, 36a3cc7)").
    gunicorn_errors.install()
    gc.collect()
    gc.freeze()
