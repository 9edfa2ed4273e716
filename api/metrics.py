"""Request metrics by route template, so ids in paths do not explode label sets."""

from __future__ import annotations

import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from core import metrics


class RequestMetrics:
    def process_request(self, req, resp):
        req.context.started = time.perf_counter()
        metrics.HTTP_IN_FLIGHT.inc()

    def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "started", None)
        if started is None:
            return
        metrics.HTTP_IN_FLIGHT.dec()
        labels = metrics.http_labels(req.method, req.uri_template, resp.status_code)
        metrics.HTTP_DURATION.labels(*labels).observe(time.perf_counter() - started)


def metrics_app(multiproc_dir: str):
    """A WSGI app answering /metrics (and nothing else) with every process's
    samples: the gunicorn master serves it on METRICS_PORT, so the API port, and
    with it the Ingress, never exposes metrics."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body, content_type = metrics.render(multiproc_dir)
        start_response(
            "200 OK",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # scrapes every 15-30 s: no access lines
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_metrics(port: int, multiproc_dir: str, host: str = "0.0.0.0"):
    """Serve :func:`metrics_app` in a daemon thread; returns the server."""
    server = make_server(
        host,
        port,
        metrics_app(multiproc_dir),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, name="metrics-server", daemon=True
    )
    thread.start()
    return server
