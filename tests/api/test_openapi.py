"""/openapi.json is a valid OpenAPI 3.1 document of exactly the routes served."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from api.app import create_app


def served_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path template) for every responder in Falcon's router."""
    found = set()

    def visit(nodes):
        for node in nodes:
            if node.resource is not None and node.method_map:
                for method, responder in node.method_map.items():
                    if getattr(responder, "__name__", "") != "method_not_allowed":
                        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", node.uri_template)
                        found.add((method, path))
            visit(node.children)

    visit(app._router._roots)
    return {r for r in found if r[0] not in ("OPTIONS",)}


def test_document_is_valid_openapi_31(client):
    doc = client.simulate_get("/openapi.json").json
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_document_covers_exactly_the_served_routes(client, deps):
    doc = client.simulate_get("/openapi.json").json
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert served_routes(create_app(deps.settings, deps)) == documented
