"""gunicorn's own error answers as RFC 9457 problems, like every other error.

gunicorn answers a request line or headers too long, or a malformed request,
itself, with an HTML page; ``post_worker_init`` (api/gunicorn_conf.py) points
its module-level writer at :func:`write_problem` in each worker.
"""

from __future__ import annotations

import orjson
from gunicorn import util

_PROBLEM_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    501: "not_implemented",
}


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """The problem document for gunicorn's error; the message, which quotes
    the client's bytes, stays out."""
    code = _PROBLEM_CODES.get(status_int, "internal_error")
    body = orjson.dumps(
        {
            "type": f"https://twitter-backend.dev/problems/{code}",
            "title": reason,
            "status": status_int,
            "detail": reason,
            "code": code,
        }
    )
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """In a worker process (the master never answers requests)."""
    util.write_error = write_problem
