"""Request metrics by route template, so ids in paths do not explode label sets."""

from __future__ import annotations

import time

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
        route = req.uri_template or "unmatched"
        metrics.HTTP_DURATION.labels(req.method, route, resp.status_code).observe(
            time.perf_counter() - started
        )
