"""The OpenAPI 3.1 document of every route (served at /openapi.json)."""

from __future__ import annotations

ID = {
    "type": "string",
    "pattern": "^[0-9]{1,19}$",
    "description": "64-bit id as a string",
}
TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _problems(*statuses: int) -> dict:
    text = {
        400: "Malformed request",
        401: "Missing, invalid or expired token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        422: "Invalid input",
        429: "Rate limited (see Retry-After and the RateLimit headers)",
        503: "Dependency unavailable",
    }
    return {
        str(s): {
            "description": text[s],
            "content": {"application/problem+json": {"schema": _ref("Problem")}},
        }
        for s in statuses
    }


def _body(properties: dict, required: list[str]) -> dict:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    responses: dict,
    *,
    auth=False,
    params=(),
    body=None,
    errors=(400, 422),
    limited=True,
) -> dict:
    op = {
        "summary": summary,
        "responses": {**responses, **_problems(*errors)},
        "parameters": list(params),
    }
    if auth:
        op["security"] = [{"bearer": []}, {"cookie": []}]
        op["responses"].update(_problems(401))
    if body:
        op["requestBody"] = body
        op["responses"].update(_problems(413))
    if limited:
        op["responses"].update(_problems(429))
        op["responses"]["429"]["headers"] = RATE_LIMIT_HEADERS
    return op


RATE_LIMIT_HEADERS = {
    name: {"schema": {"type": "string"}, "description": description}
    for name, description in (
        ("Retry-After", "seconds until the request may be retried"),
        ("RateLimit-Policy", "IETF draft: the limit and window of the bucket"),
        ("RateLimit", "IETF draft: remaining requests and reset"),
        ("X-RateLimit-Limit", "legacy: requests allowed in the window"),
        ("X-RateLimit-Remaining", "legacy: requests left"),
        ("X-RateLimit-Reset", "legacy: seconds until the window resets"),
    )
}


def _param(name: str, where: str, schema: dict, required=False) -> dict:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
    }


PAGE_PARAMS = (
    _param(
        "limit",
        "query",
        {
            "type": "integer",
            "minimum": 1,
            "default": 20,
            "description": "clamped to 100",
        },
    ),
    _param("cursor", "query", {"type": "string"}),
)
TIMELINE_PARAMS = PAGE_PARAMS + (
    _param(
        "start",
        "query",
        {"type": "integer", "minimum": 0, "description": "offset; ignored with cursor"},
    ),
)
TWEET_ID = _param("tweet_id", "path", ID)
USERNAME = _param("username", "path", {"type": "string"})


def _page_of(item: str) -> dict:
    return {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": _ref(item)},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


SCHEMAS = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
        },
    },
    "User": {
        "type": "object",
        "required": [
            "id",
            "username",
            "display_name",
            "bio",
            "created_at",
            "follower_count",
            "following_count",
            "tweet_count",
        ],
        "properties": {
            "id": ID,
            "username": {"type": "string"},
            "display_name": {"type": "string"},
            "bio": {"type": "string"},
            "created_at": TIME,
            "follower_count": {"type": "integer"},
            "following_count": {"type": "integer"},
            "tweet_count": {"type": "integer"},
            "email": {"type": "string", "description": "only for the user themself"},
        },
    },
    "Tweet": {
        "type": "object",
        "required": [
            "id",
            "user_id",
            "author_id",
            "tweet_content",
            "created_at",
            "like_count",
            "retweet_count",
            "reply_to",
            "retweet_of",
        ],
        "properties": {
            "id": ID,
            "user_id": {"type": "string", "description": "author username"},
            "author_id": ID,
            "tweet_content": {"type": "string"},
            "created_at": TIME,
            "like_count": {"type": "integer"},
            "retweet_count": {"type": "integer"},
            "reply_to": {"oneOf": [ID, {"type": "null"}]},
            "retweet_of": {
                "oneOf": [{"$ref": "#/components/schemas/Tweet"}, {"type": "null"}]
            },
            "liked": {"type": "boolean"},
            "retweeted": {"type": "boolean"},
        },
    },
    "TokenPair": {
        "type": "object",
        "required": ["access_token", "refresh_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "refresh_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
        },
    },
}

STR = {"type": "string"}
NO_CONTENT = {"204": {"description": "Done"}}


def _paths() -> dict:
    user_body = _body(
        {
            k: STR
            for k in (
                "username",
                "email",
                "display_name",
                "bio",
                "password",
                "current_password",
            )
        },
        [],
    )
    like = _json(
        {
            "type": "object",
            "properties": {
                "liked": {"type": "boolean"},
                "like_count": {"type": "integer"},
            },
        }
    )
    return {
        "/auth/signup": {
            "post": _op(
                "Create an account",
                {"201": _json(_ref("User"), "Created")},
                errors=(400, 409, 422),
                body=_body(
                    {"username": STR, "email": STR, "password": STR},
                    ["username", "email", "password"],
                ),
            )
        },
        "/auth/login": {
            "post": _op(
                "Log in",
                {"200": _json(_ref("TokenPair"))},
                errors=(400, 401, 422),
                body=_body(
                    {"username": STR, "password": STR}, ["username", "password"]
                ),
            )
        },
        "/auth/refresh-token": {
            "post": _op(
                "Rotate a refresh token",
                {"200": _json(_ref("TokenPair"))},
                errors=(400, 401, 422),
                body={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"refresh_token": STR},
                            }
                        }
                    },
                },
            )
        },
        "/auth/logout": {
            "post": _op("End this session", NO_CONTENT, auth=True, errors=())
        },
        "/.well-known/jwks.json": {
            "get": _op(
                "Public keys",
                {
                    "200": _json(
                        {"type": "object", "properties": {"keys": {"type": "array"}}}
                    )
                },
                errors=(),
            )
        },
        "/user/data/{username}": {
            "get": _op(
                "A profile",
                {"200": _json(_ref("User"))},
                params=[USERNAME],
                errors=(401, 404),
            )
        },
        "/user": {
            "get": _op(
                "The caller's profile",
                {"200": _json(_ref("User"))},
                auth=True,
                errors=(),
            ),
            "put": _op(
                "Edit the caller's profile",
                {"200": _json(_ref("User"))},
                auth=True,
                body=user_body,
                errors=(400, 403, 409, 422),
            ),
            "patch": _op(
                "Edit the caller's profile",
                {"200": _json(_ref("User"))},
                auth=True,
                body=user_body,
                errors=(400, 403, 409, 422),
            ),
            "delete": _op(
                "Delete the caller's account", NO_CONTENT, auth=True, errors=()
            ),
        },
        "/user/follow": {
            "post": _op(
                "Follow a user",
                {
                    "200": _json(
                        {"type": "object", "properties": {"following": {"const": True}}}
                    )
                },
                auth=True,
                params=[_param("username", "query", STR, True)],
                errors=(400, 404, 422),
            )
        },
        "/user/unfollow": {
            "post": _op(
                "Unfollow a user",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"following": {"const": False}},
                        }
                    )
                },
                auth=True,
                params=[_param("username", "query", STR, True)],
                errors=(400, 404, 422),
            )
        },
        "/user/{username}/followers": {
            "get": _op(
                "Followers, newest first",
                {"200": _json(_page_of("User"))},
                params=[USERNAME, *PAGE_PARAMS],
                errors=(400, 401, 404),
            )
        },
        "/user/{username}/following": {
            "get": _op(
                "Following, newest first",
                {"200": _json(_page_of("User"))},
                params=[USERNAME, *PAGE_PARAMS],
                errors=(400, 401, 404),
            )
        },
        "/tweet/create": {
            "post": _op(
                "Post a tweet or reply",
                {"201": _json(_ref("Tweet"), "Created")},
                auth=True,
                params=[_param("Idempotency-Key", "header", STR)],
                body=_body(
                    {
                        "tweet_content": STR,
                        "reply_to": {"oneOf": [ID, {"type": "null"}]},
                    },
                    ["tweet_content"],
                ),
                errors=(400, 404, 422),
            )
        },
        "/tweet/id/{tweet_id}": {
            "get": _op(
                "A tweet",
                {"200": _json(_ref("Tweet"))},
                params=[TWEET_ID],
                errors=(401, 404),
            )
        },
        "/tweet/id/{tweet_id}/delete": {
            "delete": _op(
                "Delete a tweet (author only)",
                NO_CONTENT,
                auth=True,
                params=[TWEET_ID],
                errors=(403, 404),
            )
        },
        "/tweet/id/{tweet_id}/like": {
            "post": _op(
                "Like", {"200": like}, auth=True, params=[TWEET_ID], errors=(404,)
            )
        },
        "/tweet/id/{tweet_id}/dislike": {
            "post": _op(
                "Remove a like",
                {"200": like},
                auth=True,
                params=[TWEET_ID],
                errors=(404,),
            )
        },
        "/tweet/id/{tweet_id}/retweet": {
            "post": _op(
                "Retweet",
                {
                    "201": _json(_ref("Tweet"), "Created"),
                    "200": _json(_ref("Tweet"), "Already retweeted"),
                },
                auth=True,
                params=[TWEET_ID],
                errors=(404,),
            ),
            "delete": _op(
                "Undo a retweet",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "retweeted": {"const": False},
                                "retweet_count": {"type": "integer"},
                            },
                        }
                    )
                },
                auth=True,
                params=[TWEET_ID],
                errors=(404,),
            ),
        },
        "/timeline/home": {
            "get": _op(
                "Home timeline, newest first",
                {"200": _json(_page_of("Tweet"))},
                auth=True,
                params=list(TIMELINE_PARAMS),
                errors=(400,),
            )
        },
        "/timeline/user": {
            "get": _op(
                "A user's tweets, newest first",
                {"200": _json(_page_of("Tweet"))},
                params=[_param("username", "query", STR, True), *TIMELINE_PARAMS],
                errors=(400, 401, 404, 422),
            )
        },
        "/healthz": {
            "get": _op(
                "Liveness", {"200": _json({"type": "object"})}, errors=(), limited=False
            )
        },
        "/readyz": {
            "get": _op(
                "Readiness",
                {"200": _json({"type": "object"})},
                errors=(503,),
                limited=False,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "text format",
                        "content": {"text/plain": {"schema": STR}},
                    }
                },
                errors=(),
                limited=False,
            )
        },
        "/openapi.json": {
            "get": _op("This document", {"200": _json({"type": "object"})}, errors=())
        },
    }


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Twitter backend", "version": "1.0.0"},
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "access-Token"},
            },
        },
    }
