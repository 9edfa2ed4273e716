"""The application factory and the whole route table."""

from __future__ import annotations

import falcon

from api import errors, openapi
from api.access_log import AccessLog
from api.metrics import RequestMetrics
from api.middleware import (
    Authentication,
    DatabaseConnection,
    RequestId,
    SendFirstRound,
)
from api.ratelimit import RateLimits
from api.resources import auth, ops, timelines, tweets, users
from core import container
from core.health import Readiness
from core.settings import Settings


def create_app(settings: Settings, deps: container.Deps | None = None) -> falcon.App:
    """Build the API for ``settings``; tests pass their own settings or deps."""
    deps = deps or container.build(settings, signing=True)
    limits = RateLimits(deps.settings)
    app = falcon.App(
        middleware=[
            RequestId(),
            AccessLog(),
            RequestMetrics(),
            DatabaseConnection(),
            Authentication(deps),
            limits,  # after Authentication: buckets per user and per session
            SendFirstRound(),  # after both: they queue their Redis commands
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.keep_blank_qs_values = True
    errors.register(app)
    add_routes(app, deps, limits)
    return app


def add_routes(app: falcon.App, deps: container.Deps, limits: RateLimits) -> None:
    app.add_route("/auth/signup", auth.Signup(deps))
    app.add_route("/auth/login", auth.Login(deps, limits))
    app.add_route("/auth/refresh-token", auth.RefreshToken(deps))
    app.add_route("/auth/logout", auth.Logout(deps))
    app.add_route("/.well-known/jwks.json", auth.Jwks(deps))

    app.add_route("/user", users.Me(deps, limits))
    app.add_route("/user/data/{username}", users.Profile(deps))
    follow = users.Follow(deps)
    app.add_route("/user/follow", follow)
    app.add_route("/user/unfollow", follow, suffix="unfollow")
    graph = users.Graph(deps)
    app.add_route("/user/{username}/followers", graph, suffix="followers")
    app.add_route("/user/{username}/following", graph, suffix="following")

    app.add_route("/tweet/create", tweets.Create(deps))
    tweet = tweets.Tweet(deps)
    app.add_route("/tweet/id/{tweet_id}", tweet)
    for action in ("delete", "like", "dislike", "retweet"):
        app.add_route(f"/tweet/id/{{tweet_id}}/{action}", tweet, suffix=action)

    app.add_route("/timeline/home", timelines.Home(deps))
    app.add_route("/timeline/user", timelines.UserTimeline(deps))

    readiness = Readiness(deps.settings, deps.redis)
    app.add_route("/healthz", ops.Health(readiness))
    app.add_route("/readyz", ops.Ready(readiness))
    # No /metrics here: the gunicorn master serves them on METRICS_PORT
    # (api/gunicorn_conf.py), a port no Ingress routes.
    app.add_route("/openapi.json", ops.OpenApi(_document()))


def _document() -> dict:
    """The OpenAPI document of the routes above. /metrics left the API port for
    METRICS_PORT; api/openapi.py still lists it until its owners drop it."""
    document = openapi.document()
    document["paths"].pop("/metrics", None)
    return document
