"""Operations routes: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from api.errors import problem
from api.io import send
from core.health import Readiness


class Health:
    """Liveness: answers while the process serves; touches no dependency.

    ``?verbose`` adds each dependency's state, for people and dashboards; it is
    still a 200 (a degraded dependency is no reason to restart the process).
    """

    def __init__(self, readiness: Readiness):
        self.readiness = readiness

    def on_get(self, req, resp):
        if "verbose" not in req.params:
            send(resp, {"status": "ok"})
            return
        checks = self.readiness.details()
        degraded = not all(c["ok"] for c in checks.values())
        send(resp, {"status": "degraded" if degraded else "ok", "checks": checks})
        resp.cache_control = ["no-store"]


class Ready:
    def __init__(self, readiness: Readiness):
        self.readiness = readiness

    def on_get(self, req, resp):
        failures = self.readiness.failures()
        if failures:
            problem(
                resp,
                503,
                "not_ready",
                "Not ready",
                "; ".join(failures),
                failing=", ".join(f.split(":")[0] for f in failures),
            )
            return
        send(resp, {"status": "ready"})


class Metrics:
    def __init__(self, render):
        self.render = render

    def on_get(self, req, resp):
        body, content_type = self.render()
        resp.content_type = content_type
        resp.data = body


class OpenApi:
    def __init__(self, document: dict):
        self.document = document

    def on_get(self, req, resp):
        send(resp, self.document)
