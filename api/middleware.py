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
        if given and _SANE_REQUEST_ID.fullmatch(given):
            req.context.request_id, req.context.request_id_ours = given, False
        else:
            req.context.request_id, req.context.request_id_ours = uuid.uuid4().hex, True

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


# Reads whose page script checks the denylist itself (one Redis round trip
# instead of two); they call ``finish_authentication`` on every other path.
_DEFERRED_REVOCATION = frozenset({"/timeline/home", "/timeline/user"})


class Authentication:
    """Validate any token presented on the API routes; set ``req.context.claims``.

    On the deferred routes the token is verified here but its revocation is
    checked later, by the page script or ``finish_authentication``:
    ``req.context.revocation_keys`` is set until then.
    """

    def __init__(self, deps: Deps):
        self._deps = deps

    def process_request(self, req, resp):
        req.context.claims = None
        req.context.revocation_keys = None
        if not req.path.startswith(_TOKEN_PREFIXES):
            return
        token = presented_token(req)
        if token is None:
            return
        if req.method == "GET" and req.path in _DEFERRED_REVOCATION:
            claims = auth.verify_access(self._deps, token)
            req.context.claims = claims
            req.context.revocation_keys = self._deps.denylist.keys(
                claims.jti, claims.family_id, claims.user_id
            )
        else:
            req.context.claims = auth.authenticate(self._deps, token)


def finish_authentication(deps: Deps, req) -> None:
    """The deferred revocation check, for paths that do not run the page script."""
    if req.context.revocation_keys is None:
        return
    req.context.revocation_keys = None
    claims = req.context.claims
    auth.check_not_revoked(deps, claims)


def require_claims(req, resp, resource, params):
    """Falcon hook for routes marked **auth** in the contract."""
    if req.context.claims is None:
        raise Unauthorized("This route needs an access token", code="missing_token")


def viewer_id(req) -> int | None:
    claims = req.context.claims
    return claims.user_id if claims else None


__all__ = ["Authentication", "DatabaseConnection", "RequestId", "require_claims"]
