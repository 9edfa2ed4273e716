"""Cross-cutting concerns: request ids, database connections, authentication."""

from __future__ import annotations

import re
import uuid

from core.container import Deps
from core.db import database
from core.errors import Unauthorized
from core.services import auth

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Only these prefixes take a presented token into account (see the contract);
# /auth and the operations routes ignore one.
_TOKEN_PREFIXES = ("/user", "/tweet", "/timeline")
ACCESS_COOKIE = "access-Token"
REFRESH_COOKIE = "refresh-Token"


class RequestId:
    """Honour a sane X-Request-ID, or mint one; echo it on the response."""

    def process_request(self, req, resp):
        given = req.get_header("X-Request-ID")
        req.context.request_id = (
            given if given and _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        )

    def process_response(self, req, resp, resource, req_succeeded):
        resp.set_header("X-Request-ID", req.context.request_id)


class DatabaseConnection:
    """Return this thread's pooled connection after every request."""

    def process_response(self, req, resp, resource, req_succeeded):
        if not database.is_closed():
            database.close()


def presented_token(req) -> str | None:
    header = req.get_header("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "Use 'Authorization: Bearer <token>'", code="invalid_token"
            )
        return token.strip()
    cookies = req.get_cookie_values(ACCESS_COOKIE)
    return cookies[0] if cookies else None


class Authentication:
    """Validate any token presented on the API routes; set ``req.context.claims``."""

    def __init__(self, deps: Deps):
        self._deps = deps

    def process_request(self, req, resp):
        req.context.claims = None
        if not req.path.startswith(_TOKEN_PREFIXES):
            return
        token = presented_token(req)
        if token is not None:
            req.context.claims = auth.authenticate(self._deps, token)


def require_claims(req, resp, resource, params):
    """Falcon hook for routes marked **auth** in the contract."""
    if req.context.claims is None:
        raise Unauthorized("This route needs an access token", code="missing_token")


def viewer_id(req) -> int | None:
    claims = req.context.claims
    return claims.user_id if claims else None


__all__ = ["Authentication", "DatabaseConnection", "RequestId", "require_claims"]
