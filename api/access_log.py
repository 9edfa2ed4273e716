"""One JSON log line per request, and the request id on every line logged meanwhile.

The line names the route template, never the path: paths carry usernames and
ids, and the query string may carry anything. Bodies and headers are not logged.
"""

from __future__ import annotations

import logging
import time

from falcon.constants import COMBINED_METHODS

from core import logs

log = logging.getLogger("api.access")
# Standard methods, our route templates, numbers and request ids we minted:
# nothing a client could smuggle a secret into, so the formatter skips its
# regexes for them. A request id the client chose and any other method are
# still scrubbed.
_SAFE = frozenset({"msg", "method", "route", "status", "duration_ms", "user_id"})
_SAFE_WITH_ID = _SAFE | {"request_id"}
_SAFE_BUT_METHOD = _SAFE - {"msg", "method"}


class AccessLog:
    """Bind the request id to the log context; log method, route, status, latency."""

    def process_request(self, req, resp):
        req.context.log_started = time.perf_counter()
        req.context.log_token = logs.bind(request_id=req.context.request_id)

    def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "log_started", None)
        if started is None:
            return
        claims = getattr(req.context, "claims", None)
        status = resp.status_code
        route = req.uri_template or "unmatched"
        logs.log_fields(
            log,
            logging.WARNING if status >= 500 else logging.INFO,
            f"{req.method} {route} {status}",
            {
                "method": req.method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": str(claims.user_id) if claims else None,
                "request_id": req.context.request_id,
            },
            _safe_fields(req),
        )
        logs.unbind(req.context.log_token)


def _safe_fields(req) -> frozenset:
    if req.method not in COMBINED_METHODS:
        return _SAFE_BUT_METHOD
    ours = getattr(req.context, "request_id_ours", False)
    return _SAFE_WITH_ID if ours else _SAFE
