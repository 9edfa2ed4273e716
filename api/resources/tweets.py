"""/tweet/*: create, read, delete, like, retweet."""

from __future__ import annotations

import falcon

from api.io import json_body, path_id, send
from api.middleware import require_claims, viewer_id
from core.container import Deps
from core.services import tweets


class Create:
    def __init__(self, deps: Deps):
        self.deps = deps

    @falcon.before(require_claims)
    def on_post(self, req, resp):
        body = json_body(req, self.deps.settings.max_body_bytes)
        status, tweet = tweets.create(
            self.deps,
            req.context.claims.user_id,
            body,
            req.get_header("Idempotency-Key"),
            req.context.request_id,
        )
        resp.location = f"/tweet/id/{tweet['id']}"
        send(resp, tweet, status)


class Tweet:
    def __init__(self, deps: Deps):
        self.deps = deps

    def on_get(self, req, resp, tweet_id):
        send(resp, tweets.get(path_id(tweet_id), viewer_id(req)))

    @falcon.before(require_claims)
    def on_delete_delete(self, req, resp, tweet_id):
        tweets.delete(
            self.deps,
            req.context.claims.user_id,
            path_id(tweet_id),
            req.context.request_id,
        )
        resp.status = falcon.HTTP_204

    @falcon.before(require_claims)
    def on_post_like(self, req, resp, tweet_id):
        send(
            resp, tweets.like(self.deps, req.context.claims.user_id, path_id(tweet_id))
        )

    @falcon.before(require_claims)
    def on_post_dislike(self, req, resp, tweet_id):
        send(
            resp,
            tweets.dislike(self.deps, req.context.claims.user_id, path_id(tweet_id)),
        )

    @falcon.before(require_claims)
    def on_post_retweet(self, req, resp, tweet_id):
        status, tweet = tweets.retweet(
            self.deps,
            req.context.claims.user_id,
            path_id(tweet_id),
            req.context.request_id,
        )
        if status == 201:
            resp.location = f"/tweet/id/{tweet['id']}"
        send(resp, tweet, status)

    @falcon.before(require_claims)
    def on_delete_retweet(self, req, resp, tweet_id):
        send(
            resp,
            tweets.unretweet(
                self.deps,
                req.context.claims.user_id,
                path_id(tweet_id),
                req.context.request_id,
            ),
        )
