"""Every error leaves as an RFC 9457 problem object; nothing internal leaks."""

from __future__ import annotations

import logging

import falcon
import orjson
import peewee
import redis

from api.io import PayloadTooLarge, UnsupportedMediaType
from core import errors

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"

STATUS = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}


def problem(resp, status: int, code: str, title: str, detail: str, **extra) -> None:
    body = {
        "type": f"https://twitter-backend.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    resp.status = status
    resp.content_type = PROBLEM
    resp.data = orjson.dumps(body)
    if status == 401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="twitter"')


def _status_of(ex: errors.DomainError) -> int:
    for cls in type(ex).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def domain_error(req, resp, ex, params):
    extra = {k: v for k, v in ex.extra.items() if isinstance(v, str | int)}
    problem(resp, _status_of(ex), ex.code, ex.title, ex.detail, **extra)


def http_error(req, resp, ex: falcon.HTTPError, params):
    """Falcon's own errors (unknown route, wrong method...) as problems too."""
    status = ex.status_code
    code = {
        404: "not_found",
        405: "method_not_allowed",
        400: "bad_request",
        411: "length_required",
        413: "payload_too_large",
        415: "unsupported_media_type",
    }.get(status, "http_error")
    problem(resp, status, code, ex.title or "Error", ex.description or ex.title or "")
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


def dependency_down(req, resp, ex, params):
    log.warning("dependency unavailable: %s: %s", type(ex).__name__, ex)
    problem(
        resp,
        503,
        "unavailable",
        "Service temporarily unavailable",
        "A backing service did not answer; try again shortly.",
    )
    resp.set_header("Retry-After", "5")


def unexpected(req, resp, ex, params):
    if isinstance(ex, falcon.HTTPError):
        return http_error(req, resp, ex, params)
    log.exception("unhandled error on %s %s", req.method, req.path)
    problem(
        resp,
        500,
        "internal_error",
        "Internal error",
        "Something went wrong on our side.",
    )


def register(app: falcon.App) -> None:
    # Falcon picks the most specific registered class for each exception.
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(errors.DomainError, domain_error)
    app.add_error_handler(peewee.OperationalError, dependency_down)
    app.add_error_handler(peewee.InterfaceError, dependency_down)
    app.add_error_handler(redis.ConnectionError, dependency_down)
    app.add_error_handler(redis.TimeoutError, dependency_down)
