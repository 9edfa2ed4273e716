"""The baselines: one no-op Falcon route, and the floor of a Redis-backed read.

gunicorn loads it with ``bench.noop:create_app()``, under the same config as
the API; nothing is built at import. ``/floor`` makes two Redis round trips of
one GET each, as a warm timeline read does with its many commands: what any
read of that shape costs the API process and Redis before it does any work of
its own (bench/README.md, "The floor of two round trips").
"""

from __future__ import annotations

import falcon

from core.redis_client import make_redis, pipeline, run
from core.settings import Settings

BODY = b'{"ok":true}'


class Noop:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY


class Floor:
    """Two round trips through the app's own Redis client, then the no-op body."""

    def __init__(self, client, key: str):
        self.client, self.key = client, key

    def on_get(self, req, resp):
        for _ in range(2):
            pipe = pipeline(self.client)
            pipe.execute_command("GET", self.key)  # missing: nil
            run(pipe)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/noop", Noop())
    settings = Settings.from_env()
    key = settings.redis_prefix + "{floor}"
    app.add_route("/floor", Floor(make_redis(settings), key))
    return app
