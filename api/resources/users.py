"""/user/*: profiles, edits, deletion, the social graph."""

from __future__ import annotations

import falcon

from api.io import json_body, limit_param, link_next, page, send, single_param
from api.middleware import require_claims, viewer_id
from core.container import Deps
from core.services import follows, users


class Profile:
    def __init__(self, deps: Deps):
        self.deps = deps

    def on_get(self, req, resp, username):
        send(resp, users.profile(username, viewer_id(req)))


@falcon.before(require_claims)
class Me:
    def __init__(self, deps: Deps, limits):
        self.deps = deps
        self.limits = limits  # api.ratelimit.RateLimits: current-password guesses

    def on_get(self, req, resp):
        send(resp, users.me(req.context.claims.user_id))

    def on_put(self, req, resp):
        claims = req.context.claims
        body = json_body(req, self.deps.settings.max_body_bytes)
        guard = self.limits.login_guard(req)
        send(
            resp,
            users.update(self.deps, claims.user_id, claims.family_id, body, guard),
        )

    on_patch = on_put

    def on_delete(self, req, resp):
        users.delete(self.deps, req.context.claims.user_id, req.context.request_id)
        resp.status = falcon.HTTP_204


@falcon.before(require_claims)
class Follow:
    def __init__(self, deps: Deps):
        self.deps = deps

    def on_post(self, req, resp):
        username = single_param(req, "username") or ""
        follows.follow(
            self.deps, req.context.claims.user_id, username, req.context.request_id
        )
        send(resp, {"following": True})

    def on_post_unfollow(self, req, resp):
        username = single_param(req, "username") or ""
        follows.unfollow(
            self.deps, req.context.claims.user_id, username, req.context.request_id
        )
        send(resp, {"following": False})


class Graph:
    def __init__(self, deps: Deps):
        self.deps = deps

    def on_get_followers(self, req, resp, username):
        items, cursor = follows.followers_page(
            self.deps, username, single_param(req, "cursor"), limit_param(req)
        )
        link_next(req, resp, cursor)
        send(resp, page(items, cursor))

    def on_get_following(self, req, resp, username):
        items, cursor = follows.following_page(
            self.deps, username, single_param(req, "cursor"), limit_param(req)
        )
        link_next(req, resp, cursor)
        send(resp, page(items, cursor))
