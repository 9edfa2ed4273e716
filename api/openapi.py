"""The OpenAPI 3.1 document of every route (served at /openapi.json).

Input rules come from ``core.validation.FIELDS`` and the constants the checks
use, so the document states exactly what the server enforces; every operation
lists every status it can answer, with an ``operationId``, tags and examples.
"""

from __future__ import annotations

import copy

from api.io import DEFAULT_LIMIT, MAX_LIMIT, MAX_START
from core import validation
from core.cursors import MAX_POSITION

F = validation.FIELDS
TIME = {
    "type": "string",
    "format": "date-time",
    "examples": ["2026-11-28T05:00:00.123Z"],
}
STR = {"type": "string"}

PROBLEM_TEXT = {
    400: "Malformed request (syntax, types, an unknown cursor)",
    401: "Missing, invalid, expired or revoked token",
    403: "Authenticated but not allowed",
    404: "Not found",
    409: "Conflict with existing data",
    413: "Body larger than MAX_BODY_BYTES (1 MiB)",
    414: "Request line (path and query) too long",
    415: "The body is not declared as application/json",
    422: "Well-formed but invalid input",
    429: "Rate limited: wait Retry-After seconds",
    431: "Request headers too large",
    503: "A dependency does not answer; retry after Retry-After seconds",
}
# What the HTTP server itself may answer to any request before the app runs.
TRANSPORT = (400, 414, 431)
RATE_LIMIT_HEADERS = {
    name: {"schema": STR, "description": description}
    for name, description in (
        ("RateLimit-Policy", "IETF draft: the limits and windows of the bucket"),
        ("RateLimit", "IETF draft: requests remaining and seconds to reset"),
        ("X-RateLimit-Limit", "legacy: requests allowed in the window"),
        ("X-RateLimit-Remaining", "legacy: requests left"),
        ("X-RateLimit-Reset", "legacy: Unix time the window resets"),
    )
}
RETRY_AFTER = {
    "Retry-After": {"schema": STR, "description": "seconds before trying again"}
}
NO_STORE = {
    "Cache-Control": {"schema": {"const": "no-store"}, "required": True},
    "Set-Cookie": {
        "schema": STR,
        "description": "access-Token and refresh-Token (HttpOnly, SameSite=Lax,"
        " Secure over https)",
    },
}
LINK_NEXT = {
    "Link": {
        "schema": STR,
        "description": 'RFC 8288 `<url>; rel="next"` while there is a next page',
    }
}
LOCATION = {
    "Location": {
        "schema": STR,
        "required": True,
        "description": "where the new resource is",
    }
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK", headers=None, example=None) -> dict:
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    out = {"description": description, "content": {"application/json": media}}
    if headers:
        out["headers"] = headers
    return out


def _problem(status: int) -> dict:
    out = {
        "description": PROBLEM_TEXT[status],
        "content": {
            "application/problem+json": {
                "schema": _ref("Problem"),
                "example": PROBLEM_EXAMPLES.get(status, PROBLEM_EXAMPLES[400]),
            }
        },
    }
    if status == 429:
        out["headers"] = {**RETRY_AFTER, **RATE_LIMIT_HEADERS}
    elif status == 503:
        out["headers"] = RETRY_AFTER
    elif status == 401:
        out["headers"] = {
            "WWW-Authenticate": {"schema": STR, "description": "Bearer realm"}
        }
    return out


def _body(properties: dict, required: list[str], example: dict, **extra) -> dict:
    schema = {"type": "object", "properties": properties, "required": required}
    schema.update(extra)
    return {
        "required": True,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


def _param(name: str, where: str, schema: dict, required=False, **extra) -> dict:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        **extra,
    }


def _op(
    op_id: str,
    tag: str,
    summary: str,
    responses: dict,
    *,
    auth=False,
    token_checked=False,
    params=(),
    body=None,
    errors=(),
    limited=True,
    dependencies=True,
    links=None,
) -> dict:
    """One operation; the problem statuses it can answer are added here.

    ``token_checked``: the route is under /user, /tweet or /timeline, where a
    presented token must be valid even if the route does not need one.
    """
    statuses = set(errors) | set(TRANSPORT)
    if auth or token_checked:
        statuses.add(401)
    if body:
        statuses |= {413, 415}
    if limited:
        statuses.add(429)
    if dependencies:
        statuses.add(503)
    op = {
        "operationId": op_id,
        "tags": [tag],
        "summary": summary,
        "parameters": copy.deepcopy(list(params)),
        "responses": {
            **copy.deepcopy(responses),
            **{str(s): _problem(s) for s in sorted(statuses)},
        },
    }
    if limited:
        for status, response in op["responses"].items():
            if status.startswith("2"):
                response.setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
    if auth:
        op["security"] = [{"bearer": []}, {"cookie": []}]
    if body:
        op["requestBody"] = body
    if links:
        first_2xx = next(s for s in op["responses"] if s.startswith("2"))
        op["responses"][first_2xx]["links"] = links
    return op


def _links(op_ids: tuple[str, ...], **parameters) -> dict:
    return {
        op_id: {"operationId": op_id, "parameters": dict(parameters)}
        for op_id in op_ids
    }


LIMIT = _param(
    "limit",
    "query",
    {
        "type": "integer",
        "minimum": 1,
        "default": DEFAULT_LIMIT,
        "description": f"page size; larger values are clamped to {MAX_LIMIT}",
    },
)
CURSOR = _param(
    "cursor",
    "query",
    {
        "type": "string",
        "maxLength": 200,
        "description": "the previous page's next_cursor; any other value is a 400"
        " invalid_cursor",
    },
)
START = _param(
    "start",
    "query",
    {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_START,
        "description": "0-based offset (the original API's); ignored with cursor",
    },
)
PAGE_PARAMS = (LIMIT, CURSOR)
TIMELINE_PARAMS = (LIMIT, CURSOR, START)
TWEET_ID = _param("tweet_id", "path", F["id"])
USERNAME_PATH = _param("username", "path", F["username"])
USERNAME_QUERY = _param("username", "query", F["username"], True)


def _page_of(item: str) -> dict:
    return {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": _ref(item)},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as cursor for the next page; null at the end",
            },
        },
    }


ID_OUT = {
    "type": "string",
    "pattern": "^[0-9]{1,19}$",
    "description": f"64-bit id (1..{MAX_POSITION}) as a decimal string",
}
USER_EXAMPLE = {
    "id": "7265361962188374016",
    "username": "alice",
    "display_name": "Alice",
    "bio": "Tweets about tea.",
    "created_at": "2026-11-28T05:00:00.123Z",
    "follower_count": 1,
    "following_count": 0,
    "tweet_count": 1,
}
TWEET_EXAMPLE = {
    "id": "7265362135362797568",
    "user_id": "alice",
    "author_id": "7265361962188374016",
    "tweet_content": "hello, world",
    "created_at": "2026-11-28T05:00:41.300Z",
    "like_count": 0,
    "retweet_count": 0,
    "reply_to": None,
    "retweet_of": None,
}
PROBLEM_EXAMPLES = {
    status: {
        "type": f"https://twitter-backend.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    for status, code, title, detail in (
        (400, "invalid_json", "Malformed request", "The body is not valid UTF-8 JSON"),
        (401, "invalid_token", "Authentication required", "Token expired"),
        (403, "forbidden", "Not allowed", "Only the author may delete a tweet"),
        (404, "not_found", "Not found", "No such user"),
        (409, "username_taken", "Conflict", "That username is taken"),
        (413, "payload_too_large", "Request body too large", "Bodies are limited"),
        (414, "uri_too_long", "URI too long", "The request line is too long"),
        (415, "unsupported_media_type", "Unsupported media type", "Send JSON"),
        (422, "invalid_username", "Invalid input", "username must be 1-25 ..."),
        (429, "rate_limited", "Too many requests", "Too many requests; retry in 9 s"),
        (431, "headers_too_large", "Request headers too large", "Too many headers"),
        (503, "unavailable", "Service temporarily unavailable", "Try again shortly"),
    )
}

SCHEMAS = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `code` is the stable machine string",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": STR,
            "title": STR,
            "status": {"type": "integer"},
            "detail": STR,
            "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
            "field": {"type": "string", "description": "the field at fault"},
            "bucket": {"type": "string", "description": "the rate-limit bucket"},
            "retry_after": {"type": "integer", "description": "seconds"},
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
            "id": ID_OUT,
            "username": STR,
            "display_name": STR,
            "bio": STR,
            "created_at": TIME,
            "follower_count": {"type": "integer", "minimum": 0},
            "following_count": {"type": "integer", "minimum": 0},
            "tweet_count": {"type": "integer", "minimum": 0},
            "email": {"type": "string", "description": "only for the user themself"},
        },
        "examples": [USER_EXAMPLE],
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
            "id": ID_OUT,
            "user_id": {"type": "string", "description": "author username"},
            "author_id": ID_OUT,
            "tweet_content": STR,
            "created_at": TIME,
            "like_count": {"type": "integer", "minimum": 0},
            "retweet_count": {"type": "integer", "minimum": 0},
            "reply_to": {"oneOf": [ID_OUT, {"type": "null"}]},
            "retweet_of": {"oneOf": [_ref("Tweet"), {"type": "null"}]},
            "liked": {"type": "boolean", "description": "authenticated callers only"},
            "retweeted": {"type": "boolean", "description": "authenticated only"},
        },
        "examples": [TWEET_EXAMPLE],
    },
    "TokenPair": {
        "type": "object",
        "required": ["access_token", "refresh_token", "token_type", "expires_in"],
        "properties": {
            "access_token": STR,
            "refresh_token": STR,
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "description": "seconds"},
        },
    },
}
TOKEN_EXAMPLE = {
    "access_token": "eyJhbGciOiJSUzI1NiIs...",
    "refresh_token": "eyJhbGciOiJSUzI1NiIs...",
    "token_type": "Bearer",
    "expires_in": 900,
}
NO_CONTENT = {"204": {"description": "Done"}}


def _user_body(required: list[str]) -> dict:
    fields = ("username", "email", "display_name", "bio")
    properties = {name: F[name] for name in fields}
    properties["password"] = F["password"]
    properties["current_password"] = F["presented_password"]
    return _body(
        properties,
        required,
        {"display_name": "Alice", "bio": "Tweets about tea."},
        description="any of the fields; a new password needs current_password",
        dependentRequired={"password": ["current_password"]},
    )


def _paths() -> dict:
    like = _json(
        {
            "type": "object",
            "required": ["liked", "like_count"],
            "properties": {
                "liked": {"type": "boolean"},
                "like_count": {"type": "integer", "minimum": 0},
            },
        },
        example={"liked": True, "like_count": 1},
    )
    tweet_links = _links(
        (
            "getTweet",
            "likeTweet",
            "dislikeTweet",
            "retweet",
            "undoRetweet",
            "deleteTweet",
        ),
        tweet_id="$response.body#/id",
    )
    user_links = _links(
        ("getProfile", "listFollowers", "listFollowing"),
        username="$response.body#/username",
    )
    user_links["userTimeline"] = {
        "operationId": "userTimeline",
        "parameters": {"username": "$response.body#/username"},
    }

    me_update = dict(
        auth=True,
        body=_user_body([]),
        errors=(400, 403, 409, 422),
    )

    def read_one(op_id: str, tag: str, summary: str, of: str, example, param) -> dict:
        """The one ``of`` (a schema) the path names, to anyone; 404 if none."""
        return _op(
            op_id,
            tag,
            summary,
            {"200": _json(_ref(of), example=example)},
            token_checked=True,
            params=[param],
            errors=(404,),
        )

    def on_tweet(op_id: str, summary: str, responses: dict, **extra) -> dict:
        """The caller acts on the tweet in the path."""
        extra.setdefault("errors", (404,))
        return _op(
            op_id, "tweets", summary, responses, auth=True, params=[TWEET_ID], **extra
        )

    def follow(op_id: str, summary: str, value: bool) -> dict:
        """Follow or unfollow the user in the query; answers ``following: value``."""
        following = _json(
            {
                "type": "object",
                "required": ["following"],
                "properties": {"following": {"const": value}},
            },
            example={"following": value},
        )
        return _op(
            op_id,
            "users",
            summary,
            {"200": following},
            auth=True,
            params=[USERNAME_QUERY],
            errors=(400, 404, 422),
        )

    def users_of(op_id: str, summary: str) -> dict:
        """A page of the users related to the user in the path."""
        return _op(
            op_id,
            "users",
            summary,
            {"200": _json(_page_of("User"), headers=LINK_NEXT)},
            token_checked=True,
            params=[USERNAME_PATH, *PAGE_PARAMS],
            errors=(400, 404),
        )

    return {
        "/auth/signup": {
            "post": _op(
                "signup",
                "auth",
                "Create an account",
                {
                    "201": _json(
                        _ref("User"), "Created", LOCATION, {**USER_EXAMPLE, "email": ""}
                    )
                },
                body=_body(
                    {name: F[name] for name in ("username", "email", "password")},
                    ["username", "email", "password"],
                    {
                        "username": "alice",
                        "email": "alice@example.com",
                        "password": "correct horse",
                    },
                ),
                errors=(400, 409, 422),
                links=user_links,
            )
        },
        "/auth/login": {
            "post": _op(
                "login",
                "auth",
                "Log in: a token pair, also as cookies",
                {"200": _json(_ref("TokenPair"), "Logged in", NO_STORE, TOKEN_EXAMPLE)},
                body=_body(
                    {
                        "username": {
                            "type": "string",
                            "pattern": F["password"]["pattern"],
                            "description": "a wrong or unknown one is a 401",
                        },
                        "password": F["presented_password"],
                    },
                    ["username", "password"],
                    {"username": "alice", "password": "correct horse"},
                ),
                errors=(400, 401, 422),
            )
        },
        "/auth/refresh-token": {
            "post": _op(
                "refreshToken",
                "auth",
                "Spend a refresh token (body or refresh-Token cookie) for a new pair",
                {
                    "200": _json(
                        _ref("TokenPair"), "A new pair", NO_STORE, TOKEN_EXAMPLE
                    )
                },
                body={
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"refresh_token": STR},
                            },
                            "example": {"refresh_token": "eyJhbGciOiJSUzI1NiIs..."},
                        }
                    },
                },
                errors=(400, 401, 422),
            )
        },
        "/auth/logout": {
            "post": _op(
                "logout",
                "auth",
                "End this session: its refresh tokens and this access token",
                NO_CONTENT,
                auth=True,
            )
        },
        "/.well-known/jwks.json": {
            "get": _op(
                "getJwks",
                "auth",
                "Every public key still accepted",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["keys"],
                            "properties": {"keys": {"type": "array"}},
                        }
                    )
                },
                dependencies=False,
            )
        },
        "/user/data/{username}": {
            "get": read_one(
                "getProfile", "users", "A profile", "User", USER_EXAMPLE, USERNAME_PATH
            )
        },
        "/user": {
            "get": _op(
                "getMe",
                "users",
                "The caller's profile, with email",
                {"200": _json(_ref("User"), example=USER_EXAMPLE)},
                auth=True,
            ),
            "put": _op(
                "updateMe",
                "users",
                "Edit the caller's profile",
                {"200": _json(_ref("User"), example=USER_EXAMPLE)},
                **me_update,
            ),
            "patch": _op(
                "patchMe",
                "users",
                "Edit the caller's profile (as PUT)",
                {"200": _json(_ref("User"), example=USER_EXAMPLE)},
                **me_update,
            ),
            "delete": _op(
                "deleteMe",
                "users",
                "Delete the caller's account and everything it made",
                NO_CONTENT,
                auth=True,
            ),
        },
        "/user/follow": {"post": follow("follow", "Follow a user (idempotent)", True)},
        "/user/unfollow": {
            "post": follow("unfollow", "Unfollow a user (idempotent)", False)
        },
        "/user/{username}/followers": {
            "get": users_of("listFollowers", "Followers, newest follow first")
        },
        "/user/{username}/following": {
            "get": users_of("listFollowing", "Followed users, newest follow first")
        },
        "/tweet/create": {
            "post": _op(
                "createTweet",
                "tweets",
                "Post a tweet or a reply",
                {
                    "201": _json(
                        _ref("Tweet"),
                        "Created (or, for a repeated Idempotency-Key, the first)",
                        LOCATION,
                        TWEET_EXAMPLE,
                    ),
                },
                auth=True,
                params=[_param("Idempotency-Key", "header", F["idempotency_key"])],
                body=_body(
                    {
                        "tweet_content": F["tweet_content"],
                        "reply_to": {"oneOf": [F["id"], {"type": "null"}]},
                    },
                    ["tweet_content"],
                    {"tweet_content": "hello, world", "reply_to": None},
                ),
                errors=(400, 404, 422),
                links=tweet_links,
            )
        },
        "/tweet/id/{tweet_id}": {
            "get": read_one(
                "getTweet", "tweets", "A tweet", "Tweet", TWEET_EXAMPLE, TWEET_ID
            )
        },
        "/tweet/id/{tweet_id}/delete": {
            "delete": on_tweet(
                "deleteTweet",
                "Delete a tweet (its author only) and its retweets",
                NO_CONTENT,
                errors=(403, 404),
                links=_links(("getTweet",), tweet_id="$request.path.tweet_id"),
            )
        },
        "/tweet/id/{tweet_id}/like": {
            "post": on_tweet("likeTweet", "Like (idempotent)", {"200": like})
        },
        "/tweet/id/{tweet_id}/dislike": {
            "post": on_tweet(
                "dislikeTweet", "Remove a like (idempotent)", {"200": like}
            )
        },
        "/tweet/id/{tweet_id}/retweet": {
            "post": on_tweet(
                "retweet",
                "Retweet (a retweet of a retweet retweets its original)",
                {
                    "201": _json(_ref("Tweet"), "Created", LOCATION),
                    "200": _json(_ref("Tweet"), "Already retweeted: the same retweet"),
                },
                links=_links(("getTweet",), tweet_id="$response.body#/id"),
            ),
            "delete": on_tweet(
                "undoRetweet",
                "Undo a retweet (the original's id or the retweet's own)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["retweeted", "retweet_count"],
                            "properties": {
                                "retweeted": {"const": False},
                                "retweet_count": {"type": "integer", "minimum": 0},
                            },
                        },
                        example={"retweeted": False, "retweet_count": 0},
                    )
                },
            ),
        },
        "/timeline/home": {
            "get": _op(
                "homeTimeline",
                "timelines",
                "The caller's and their followees' tweets and retweets, newest first",
                {"200": _json(_page_of("Tweet"), headers=LINK_NEXT)},
                auth=True,
                params=list(TIMELINE_PARAMS),
                errors=(400,),
            )
        },
        "/timeline/user": {
            "get": _op(
                "userTimeline",
                "timelines",
                "A user's tweets and retweets, newest first",
                {"200": _json(_page_of("Tweet"), headers=LINK_NEXT)},
                token_checked=True,
                params=[USERNAME_QUERY, *TIMELINE_PARAMS],
                errors=(400, 404, 422),
            )
        },
        "/healthz": {
            "get": _op(
                "health",
                "operations",
                "Liveness; ?verbose adds each dependency's state",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {
                                "status": {"enum": ["ok", "degraded"]},
                                "checks": {"type": "object"},
                            },
                        },
                        example={"status": "ok"},
                    )
                },
                params=[
                    _param(
                        "verbose",
                        "query",
                        STR,
                        description="present (any value): report every dependency",
                        allowEmptyValue=True,
                    )
                ],
                limited=False,
                dependencies=False,
            )
        },
        "/readyz": {
            "get": _op(
                "ready",
                "operations",
                "Readiness: Postgres answers and the schema is current",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"status": {"const": "ready"}},
                        },
                        example={"status": "ready"},
                    )
                },
                limited=False,
            )
        },
        "/metrics": {
            "get": _op(
                "metrics",
                "operations",
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": STR}},
                    }
                },
                limited=False,
                dependencies=False,
            )
        },
        "/openapi.json": {
            "get": _op(
                "openapi",
                "operations",
                "This document",
                {"200": _json({"type": "object"})},
                dependencies=False,
            )
        },
    }


def document() -> dict:
    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Twitter backend",
                "version": "1.0.0",
                "description": "JSON in, JSON out; errors are RFC 9457 problems.",
            },
            "tags": [
                {"name": "auth", "description": "accounts' sessions and keys"},
                {"name": "users", "description": "profiles and the social graph"},
                {"name": "tweets", "description": "tweets, likes and retweets"},
                {"name": "timelines", "description": "paginated timelines"},
                {"name": "operations", "description": "probes, metrics, this"},
            ],
            "paths": _paths(),
            "components": {
                "schemas": SCHEMAS,
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                    },
                    "cookie": {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": "access-Token",
                    },
                },
            },
        }
    )
