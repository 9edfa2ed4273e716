"""/timeline/home and /timeline/user."""

from __future__ import annotations

import falcon

from api.io import limit_param, page, send, single_param, start_param
from api.middleware import require_claims, viewer_id
from core.container import Deps
from core.errors import ValidationFailed
from core.services import users


class _Timeline:
    kind = ""

    def __init__(self, deps: Deps):
        self.deps = deps

    def _page(self, req, resp, owner: int, reader) -> None:
        limit = limit_param(req)
        cursor = single_param(req, "cursor")
        before, offset = None, 0
        if cursor:
            before = self.deps.cursors.decode(cursor, self.kind, owner)
        else:
            offset = start_param(req)
        items = reader(owner, before, offset, limit, viewer_id(req))
        next_cursor = None
        if len(items) == limit:
            next_cursor = self.deps.cursors.encode(
                self.kind, owner, int(items[-1]["id"])
            )
        send(resp, page(items, next_cursor))


class Home(_Timeline):
    kind = "home"

    @falcon.before(require_claims)
    def on_get(self, req, resp):
        owner = req.context.claims.user_id
        self._page(req, resp, owner, self.deps.timelines.home_page)


class UserTimeline(_Timeline):
    kind = "user"

    def on_get(self, req, resp):
        username = single_param(req, "username")
        if not username:
            raise ValidationFailed("username is required", code="missing_field")
        owner = users.id_by_username(username)
        self._page(req, resp, owner, self.deps.timelines.user_page)
