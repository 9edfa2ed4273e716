"""The baseline app: one no-op Falcon route, served by the same gunicorn config.

gunicorn loads it with ``bench.noop:create_app()``; nothing is built at import.
"""

from __future__ import annotations

import falcon

BODY = b'{"ok":true}'


class Noop:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = BODY


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/noop", Noop())
    return app
