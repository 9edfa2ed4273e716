"""/timeline/home and /timeline/user."""

from __future__ import annotations

import falcon

from api.io import limit_param, link_next, page, send, single_param, start_param
from api.middleware import finish_authentication, require_claims, viewer_id
from core import validation
from core.cached_pages import StaleOwner
from core.container import Deps
from core.errors import ValidationFailed
from core.first_round import FirstRound
from core.services import users


class _Timeline:
    kind = ""

    def __init__(self, deps: Deps):
        self.deps = deps

    def _page(self, req, resp, owner: int | str, reader) -> None:
        """``owner``: an id, or a username resolved here."""
        limit = limit_param(req)
        cursor = single_param(req, "cursor")
        offset = 0 if cursor else start_param(req)
        name = owner if isinstance(owner, str) else None
        guessed = False
        if name is not None:
            # a guessed id only where the cache checks it (first pages)
            owner, guessed = self._owner(name, guess=not cursor and offset == 0)
        before = self.deps.cursors.decode(cursor, self.kind, owner) if cursor else None
        viewer = viewer_id(req)
        cached = None
        if offset == 0:
            owner, cached = self._cached(
                req, owner, before, limit, viewer, name, guessed
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

    def _cached(self, req, owner, before, limit, viewer, name, guessed):
        """(owner, the page from the cache or None); a guessed owner that
        turns out stale is looked up again, and the page read anew."""
        pages = self.deps.pages
        first = req.context.first_round
        check = name if guessed else None
        try:
            return owner, pages.page(
                self.kind, owner, before, limit, viewer, first, check
            )
        except StaleOwner:
            owner, _ = self._owner(name, guess=False)
            self.deps.timelines.cache.remember_user_id(name, owner)
            again = FirstRound(self.deps.redis)
            return owner, pages.page(self.kind, owner, before, limit, viewer, again)

    def _cursor(self, owner: int, count: int, limit: int, last_id) -> str | None:
        if count < limit:
            return None
        return self.deps.cursors.encode(self.kind, owner, last_id)

    def _owner(self, username: str, guess: bool) -> tuple[int, bool]:
        """(user id, whether it is this process's unchecked guess)."""
        owners = self.deps.pages.local.owners
        if guess and (known := owners.get_many([username]).get(username)):
            return known, True
        cache = self.deps.timelines.cache
        owner = cache.user_id(username)
        if owner is None:
            owner = users.id_by_username(username)  # 404 for an unknown name
            cache.remember_user_id(username, owner)
        owners.put_many({username: owner})
        return owner, False

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
