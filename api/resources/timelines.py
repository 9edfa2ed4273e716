"""/timeline/home and /timeline/user."""

from __future__ import annotations

import falcon
import orjson

from api.io import (
    JSON,
    limit_param,
    link_next,
    page,
    send,
    single_param,
    start_param,
)
from api.middleware import finish_authentication, require_claims, viewer_id
from core import validation
from core.container import Deps
from core.errors import ValidationFailed
from core.read_cache import REVOKED
from core.services import auth, users


class _Timeline:
    kind = ""

    def __init__(self, deps: Deps):
        self.deps = deps

    def _page(self, req, resp, owner: int | str, reader) -> None:
        """``owner``: an id, or a username that only the long path resolves."""
        limit = limit_param(req)
        cursor = single_param(req, "cursor")
        before, offset = None, 0
        if cursor:
            if isinstance(owner, str):
                owner = self._owner(owner)  # the cursor is bound to the id
            before = self.deps.cursors.decode(cursor, self.kind, owner)
        else:
            offset = start_param(req)
        viewer = viewer_id(req)
        if offset == 0 and self._send_cached(req, resp, owner, before, limit, viewer):
            return
        finish_authentication(self.deps, req)
        if isinstance(owner, str):
            owner = self._owner(owner)
        items = reader(owner, before, offset, limit, viewer)
        last = int(items[-1]["id"]) if items else None
        cursor = self._cursor(owner, len(items), limit, last)
        link_next(req, resp, cursor)
        send(resp, page(items, cursor))

    def _send_cached(self, req, resp, owner, before, limit, viewer) -> bool:
        cached = self.deps.timelines.cached_page(
            self.kind, owner, before, limit, viewer, req.context.revocation_keys
        )
        if cached is REVOKED:
            raise auth.revoked()
        if cached is None:
            return False
        req.context.revocation_keys = None  # the script checked it
        # the items arrive as JSON: only the envelope is written here
        cursor = self._cursor(cached.owner, cached.count, limit, cached.last_id)
        link_next(req, resp, cursor)
        resp.content_type = JSON
        resp.data = b"".join(
            (
                b'{"data":[',
                cached.items,
                b'],"next_cursor":',
                orjson.dumps(cursor),
                b"}",
            )
        )
        return True

    def _cursor(self, owner: int, count: int, limit: int, last_id) -> str | None:
        if count < limit:
            return None
        return self.deps.cursors.encode(self.kind, owner, last_id)

    def _owner(self, username: str) -> int:
        cache = self.deps.timelines.cache
        owner = cache.user_id(username)
        if owner is None:
            owner = users.id_by_username(username)  # 404 for an unknown name
            cache.remember_user_id(username, owner)
        return owner

    def _checked(self, req, resp, owner_of) -> None:
        """Any answer but the page script's own checks the token first."""
        try:
            owner = owner_of(req)
            reader = (
                self.deps.timelines.home_page
                if self.kind == "home"
                else self.deps.timelines.user_page
            )
            self._page(req, resp, owner, reader)
        except Exception:
            finish_authentication(self.deps, req)  # a revoked token: 401 first
            raise


class Home(_Timeline):
    kind = "home"

    @falcon.before(require_claims)
    def on_get(self, req, resp):
        self._checked(req, resp, lambda req: req.context.claims.user_id)


class UserTimeline(_Timeline):
    kind = "user"

    def on_get(self, req, resp):
        self._checked(req, resp, self._owner_of)

    def _owner_of(self, req) -> str:
        username = single_param(req, "username")
        if not username:
            raise ValidationFailed("username is required", code="missing_field")
        return validation.existing_username(username)  # before any cache lookup
