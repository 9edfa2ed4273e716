"""/openapi.json is a valid OpenAPI 3.1 document of exactly the routes served."""

from __future__ import annotations

import re

from falcon.inspect import inspect_routes
from openapi_spec_validator import validate

from api.app import create_app


def served_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path template) for every responder the app serves (Falcon's
    public route inspection; its own 405 and OPTIONS responders left out)."""
    return {
        (method.method, re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.path))
        for route in inspect_routes(app)
        for method in route.methods
        if not method.internal and method.method != "OPTIONS"
    }


def test_document_is_valid_openapi_31(client):
    doc = client.simulate_get("/openapi.json").json
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_document_covers_exactly_the_served_routes(client, deps):
    doc = client.simulate_get("/openapi.json").json
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert served_routes(create_app(deps.settings, deps)) == documented


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_every_operation_has_a_unique_id_tags_and_every_status_it_can_answer(client):
    doc = client.simulate_get("/openapi.json").json
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    tags = {t["name"] for t in doc["tags"]}
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert op["tags"] and set(op["tags"]) <= tags, where
        statuses = set(op["responses"])
        assert {"400", "414", "431"} <= statuses, where  # the HTTP server's own
        if "requestBody" in op:
            assert {"413", "415"} <= statuses, where
        if path not in ("/healthz", "/readyz", "/metrics"):
            assert "429" in statuses, where
        if path.startswith(("/user", "/tweet", "/timeline")):
            assert "401" in statuses, where


def test_input_rules_are_the_ones_the_validation_uses(client):
    from jsonschema import Draft202012Validator

    from core import validation

    doc = client.simulate_get("/openapi.json").json
    signup = doc["paths"]["/auth/signup"]["post"]["requestBody"]["content"]
    fields = signup["application/json"]["schema"]["properties"]
    assert fields["username"]["pattern"] == validation.FIELDS["username"]["pattern"]
    assert fields["password"]["maxLength"] == validation.MAX_PASSWORD
    create = doc["paths"]["/tweet/create"]["post"]["requestBody"]["content"]
    content = create["application/json"]["schema"]["properties"]["tweet_content"]
    assert content["maxLength"] == validation.MAX_TWEET_CHARS
    # and the schemas agree with the checks on values either side of each rule
    cases = {
        "username": (["a", "A_9" * 8, "x" * 25], ["", "x" * 26, "\u212aate", "a b"]),
        "password": (["p" * 8, "p" * 128], ["p" * 7, "p" * 129, "pass\x00word"]),
        "tweet_content": (["hi", " x ", "é" * 280], ["", "   ", "x" * 281, "a\x00"]),
        "email": (["a@b.co", "x.y+z@mail-1.example.org"], ["a@b", "a b@c.de", "@c.de"]),
    }
    checks = {
        "username": validation.username,
        "password": validation.password,
        "tweet_content": validation.tweet_content,
        "email": validation.email,
    }
    for name, (good, bad) in cases.items():
        schema = Draft202012Validator(validation.FIELDS[name])
        for value in good:
            assert schema.is_valid(value), (name, value)
            checks[name](value)
        for value in bad:
            assert not schema.is_valid(value), (name, value)
            try:
                checks[name](validation.required_str({name: value}, name))
            except Exception:
                continue
            raise AssertionError(f"{name}: the server accepts {value!r}")


def test_examples_match_their_schemas(client):
    from jsonschema import Draft202012Validator

    doc = client.simulate_get("/openapi.json").json
    registry_doc = {"components": doc["components"]}

    def check(schema, example, where):
        validator = Draft202012Validator(
            {**schema, "components": registry_doc["components"]}
        )
        errors = list(validator.iter_errors(example))
        assert not errors, (where, errors[0].message)

    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        for media in op.get("requestBody", {}).get("content", {}).values():
            assert "example" in media, where
            check(media["schema"], media["example"], where)
        for status, response in op["responses"].items():
            for media in response.get("content", {}).values():
                if "example" in media:
                    check(media["schema"], media["example"], f"{where} {status}")
