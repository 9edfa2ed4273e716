"""/timeline/home and /timeline/user."""

from __future__ import annotations

import falcon

from api.io import limit_param, link_next, page, send, single_param, start_param
from api.middleware import finish_authentication, require_claims, viewer_id
from core import validation
from core.container import Deps
from core.errors import ValidationFailed
from core.services import users


class _Timeline:
    kind = ""

    def __init__(self, deps: Deps):
        self.deps = deps

    def _page(self, req, resp, owner: int | str, reader) -> None:
        """``owner``: an id, or a username resolved here."""
        limit = limit_param(req)
        cursor = single_param(req, "cursor")
        if isinstance(owner, str):
            owner = self._owner(owner)
        before, offset = None, 0
        if cursor:
            before = self.deps.cursors.decode(cursor, self.kind, owner)
        else:
            offset = start_param(req)
        viewer = viewer_id(req)
        cached = None
        if offset == 0:
            first = req.context.first_round
            cached = self.deps.pages.page(
                self.kind, owner, before, limit, viewer, first
            )
        if cached is not None:
            items, last = cached
        else:
            finish_authentication(req)
            items = reader(owner, before, offset, limit, viewer)
            last = int(items[-1]["id"]) if items else None
        cursor = self._cursor(owner, len(items), limit, last)
        link_next(req, resp, cursor)
        send(resp, page(items, cursor))

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
        """Whatever happens, a revoked token's 401 comes first."""
        try:
            owner = owner_of(req)
            reader = (
                self.deps.timelines.home_page
                if self.kind == "home"
                else self.deps.timelines.user_page
            )
            self._page(req, resp, owner, reader)
        except Exception:
            finish_authentication(req)
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
