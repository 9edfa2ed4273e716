"""Request parsing and response writing shared by every resource."""

from __future__ import annotations

from urllib.parse import urlencode

import falcon
import orjson

from core import validation
from core.errors import BadRequest, DomainError
from core.timelines import MAX_OFFSET

JSON = "application/json; charset=utf-8"
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
MAX_START = MAX_OFFSET


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    title = "Unsupported media type"


READ_CHUNK = 64 * 1024


def send(resp: falcon.Response, payload, status: int = 200) -> None:
    resp.status = status
    resp.content_type = JSON
    resp.data = orjson.dumps(payload)


def is_chunked(req: falcon.Request) -> bool:
    """A body sent without Content-Length (Transfer-Encoding: chunked)."""
    coding = req.get_header("Transfer-Encoding") or ""
    return req.content_length is None and "chunked" in coding.lower()


def has_body(req: falcon.Request) -> bool:
    return bool(req.content_length) or is_chunked(req)


def _check_media_type(req: falcon.Request) -> None:
    """Bodies are JSON, declared as such: a browser form or a text/plain
    "simple request" is refused, so cookie sessions rest on more than SameSite."""
    declared = req.content_type
    if declared is None:
        return  # judged by the body: an empty one is a 400, else a 415
    media_type, _, params = declared.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media_type.strip().lower() != "application/json" or charset not in (
        None,
        "utf-8",
    ):
        raise UnsupportedMediaType(
            "Request bodies must be 'Content-Type: application/json' (UTF-8)"
        )


def _read(req: falcon.Request, max_bytes: int) -> bytes:
    """Up to ``max_bytes + 1`` bytes of the body, chunked or not."""
    if not is_chunked(req):
        return req.bounded_stream.read(max_bytes + 1)
    # Falcon's bounded stream stops at Content-Length, which a chunked body
    # lacks; the server's own stream decodes the chunks and ends at the last.
    parts, size = [], 0
    while size <= max_bytes:
        part = req.stream.read(min(READ_CHUNK, max_bytes + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def json_body(req: falcon.Request, max_bytes: int) -> dict:
    """The body as a JSON object; 415 unless declared JSON, 413 past
    ``max_bytes``, 400 if not an object."""
    _check_media_type(req)
    if req.content_length is not None and req.content_length > max_bytes:
        raise PayloadTooLarge(f"Bodies are limited to {max_bytes} bytes")
    raw = _read(req, max_bytes)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"Bodies are limited to {max_bytes} bytes")
    if raw and req.content_type is None:
        raise UnsupportedMediaType(
            "Request bodies must be 'Content-Type: application/json' (UTF-8)"
        )
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        # also raised for invalid UTF-8 and out-of-range numbers
        raise BadRequest(
            "The body is not valid UTF-8 JSON", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", code="invalid_json")
    return body


def single_param(req: falcon.Request, name: str) -> str | None:
    value = req.params.get(name)
    if isinstance(value, list):
        raise BadRequest(f"'{name}' was given more than once", code=f"invalid_{name}")
    return value


def limit_param(req: falcon.Request) -> int:
    """``limit``: an integer of at least 1; any larger than MAX_LIMIT is clamped."""
    raw = single_param(req, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else None
    if not digits:  # not a plain decimal integer, or zero
        raise BadRequest("limit must be an integer of at least 1", code="invalid_limit")
    return MAX_LIMIT if len(digits) > 3 else min(int(digits), MAX_LIMIT)


def start_param(req: falcon.Request) -> int:
    raw = single_param(req, "start")
    if raw is None:
        return 0
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadRequest("start must be a non-negative integer", code="invalid_start")
    if int(raw) > MAX_START:  # deeper pages take a cursor, whichever store answers
        raise BadRequest(
            f"start must be at most {MAX_START}; use cursor", code="invalid_start"
        )
    return int(raw)


def link_next(req: falcon.Request, resp: falcon.Response, cursor: str | None) -> None:
    """RFC 8288 ``Link: <...>; rel="next"`` while there is a next page: this
    request's path and query, the cursor replaced (and ``start`` dropped)."""
    if cursor is None:
        return
    query = [
        (name, value)
        for name, values in req.params.items()
        if name not in ("cursor", "start")
        for value in (values if isinstance(values, list) else [values])
    ]
    query.append(("cursor", cursor))
    resp.append_header("Link", f'<{req.path}?{urlencode(query)}>; rel="next"')


def path_id(raw: str) -> int | None:
    """A tweet id from the path; None (-> 404) when it cannot name a tweet."""
    return validation.parse_id(raw)


def page(items: list, next_cursor: str | None) -> dict:
    return {"data": items, "next_cursor": next_cursor}
