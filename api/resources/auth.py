"""/auth/* and the JWKS document."""

from __future__ import annotations

import falcon

from api.clientip import ClientAddress
from api.io import has_body, json_body, send
from api.middleware import ACCESS_COOKIE, REFRESH_COOKIE, presented_token
from core.container import Deps
from core.errors import BadRequest, Unauthorized
from core.services import auth, users


class _Base:
    def __init__(self, deps: Deps):
        self.deps = deps
        self._client = ClientAddress(deps.settings.trusted_proxies)

    def _body(self, req) -> dict:
        return json_body(req, self.deps.settings.max_body_bytes)

    def _send_tokens(self, req, resp, pair: dict) -> None:
        """A token pair, as cookies too; never stored by a cache (RFC 6749 5.1)."""
        self._set_cookies(req, resp, pair)
        resp.cache_control = ["no-store"]
        resp.set_header("Pragma", "no-cache")
        send(resp, pair)

    def _secure_cookies(self, req) -> bool:
        # Over https the cookies must never travel in clear afterwards.
        return self.deps.settings.cookie_secure or self._client.https(
            req.scheme, req.remote_addr, req.get_header("X-Forwarded-Proto")
        )

    def _set_cookies(self, req, resp, pair: dict) -> None:
        secure = self._secure_cookies(req)
        resp.set_cookie(
            ACCESS_COOKIE,
            pair["access_token"],
            path="/",
            max_age=self.deps.settings.access_token_ttl_s,
            secure=secure,
            http_only=True,
            same_site="Lax",
        )
        resp.set_cookie(
            REFRESH_COOKIE,
            pair["refresh_token"],
            path="/auth",
            max_age=self.deps.settings.refresh_token_ttl_s,
            secure=secure,
            http_only=True,
            same_site="Lax",
        )


class Signup(_Base):
    def on_post(self, req, resp):
        user = users.signup(self.deps, self._body(req))
        resp.location = f"/user/data/{user['username']}"
        send(resp, user, falcon.HTTP_201)


class Login(_Base):
    def __init__(self, deps: Deps, limits):
        super().__init__(deps)
        self.limits = limits  # api.ratelimit.RateLimits: failed-login back-off

    def on_post(self, req, resp):
        body = self._body(req)
        pair = auth.login(self.deps, body, self.limits.login_guard(req))
        self._send_tokens(req, resp, pair)


class RefreshToken(_Base):
    def on_post(self, req, resp):
        body = self._body(req) if has_body(req) else {}
        token = body.get("refresh_token")
        if token is not None and not isinstance(token, str):
            raise BadRequest("'refresh_token' must be a string", code="wrong_type")
        if token is None:
            cookies = req.get_cookie_values(REFRESH_COOKIE)
            token = cookies[0] if cookies else None
        if not isinstance(token, str) or not token:
            raise Unauthorized("A refresh_token is required", code="missing_token")
        pair = auth.refresh(self.deps, token)
        self._send_tokens(req, resp, pair)


class Logout(_Base):
    def on_post(self, req, resp):
        token = presented_token(req)
        if token is None:
            raise Unauthorized("This route needs an access token", code="missing_token")
        auth.logout(self.deps, auth.authenticate(self.deps, token))
        resp.unset_cookie(ACCESS_COOKIE, path="/")
        resp.unset_cookie(REFRESH_COOKIE, path="/auth")
        resp.status = falcon.HTTP_204


class Jwks(_Base):
    def on_get(self, req, resp):
        send(resp, self.deps.tokens.jwks())
        resp.cache_control = ["public", "max-age=300"]
