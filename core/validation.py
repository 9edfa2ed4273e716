"""Field checks shared by every route: types first (400), then rules (422)."""

from __future__ import annotations

import re
import unicodedata

from core.errors import BadRequest, MissingField, NotFound, ValidationFailed

# The rules as data: the checks below and the OpenAPI document (api/openapi.py,
# through ``FIELDS``) are both built from these, so the two cannot drift.
USERNAME_RE = r"[A-Za-z0-9_]{1,25}"
# Whitespace as both Python (str.isspace) and ECMAScript regexes (OpenAPI's
# dialect) see it: spelled out, because their \s differ (U+0085, U+001C-U+001F,
# U+FEFF), and a client's validator must agree with ours.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003"
    "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WS_CLASS = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
    r"\u205f\u3000\ufeff"
)
# Deliberately simple: one @, a dotted domain, no whitespace or control
# characters in the local part.
EMAIL_RE = (
    rf"[^@\x00-\x1f\x7f-\x9f{_WS_CLASS}]{{1,64}}"
    r"@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+"
)
MAX_EMAIL = 254
MAX_TWEET_CHARS = 280
MIN_PASSWORD, MAX_PASSWORD = 8, 128
MAX_DISPLAY_NAME, MAX_BIO = 50, 160
# Visible ASCII: a header value keeps it byte for byte through every proxy.
IDEMPOTENCY_KEY_RE = r"[\x21-\x7e]{1,255}"
MAX_ID = (1 << 63) - 1
ID_RE = r"[0-9]{1,19}"
USERNAME = re.compile(USERNAME_RE)
EMAIL = re.compile(EMAIL_RE)
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_RE)
NO_NUL = r"[^\x00]*"  # every text field refuses NUL (invalid_characters)


def _anchored(regex: str) -> str:
    # JSON Schema patterns search; the checks here match the whole value.
    return f"^(?:{regex})$"


FIELDS = {
    "username": {
        "type": "string",
        "pattern": _anchored(USERNAME_RE),
        "minLength": 1,
        "maxLength": 25,
        "description": "1-25 of A-Z, a-z, 0-9 and _; unique ignoring case",
        "examples": ["alice"],
    },
    "email": {
        "type": "string",
        "pattern": _anchored(EMAIL_RE),
        "maxLength": MAX_EMAIL,
        "description": "unique ignoring case",
        "examples": ["alice@example.com"],
    },
    "password": {
        "type": "string",
        "pattern": _anchored(NO_NUL),
        "minLength": MIN_PASSWORD,
        "maxLength": MAX_PASSWORD,
        "examples": ["correct horse"],
    },
    # a password presented for checking (login, current_password): no longer
    # than any that can be set, any length below (older rules may have allowed it)
    "presented_password": {
        "type": "string",
        "pattern": _anchored(NO_NUL),
        "maxLength": MAX_PASSWORD,
        "examples": ["correct horse"],
    },
    "display_name": {
        "type": "string",
        "pattern": _anchored(NO_NUL),
        "maxLength": MAX_DISPLAY_NAME,
        "examples": ["Alice"],
    },
    "bio": {
        "type": "string",
        "pattern": _anchored(NO_NUL),
        "maxLength": MAX_BIO,
        "examples": ["Tweets about tea."],
    },
    "tweet_content": {
        "type": "string",
        # something besides whitespace, and no NUL
        "pattern": rf"^[^\x00]*[^\x00{_WS_CLASS}][^\x00]*$",
        "minLength": 1,
        "maxLength": MAX_TWEET_CHARS,
        "description": f"1-{MAX_TWEET_CHARS} Unicode code points after NFC"
        " normalisation, not only whitespace",
        "examples": ["hello, world"],
    },
    "id": {
        "type": "string",
        "pattern": _anchored(ID_RE),
        "description": "a 64-bit id as a decimal string",
        "examples": ["7265361962188374016"],
    },
    "idempotency_key": {
        "type": "string",
        "pattern": _anchored(IDEMPOTENCY_KEY_RE),
        "minLength": 1,
        "maxLength": 255,
        "description": "1-255 visible ASCII characters; the same key with another"
        " body within 24 h is a 422 idempotency_key_reused",
        "examples": ["0b7c9a52-3f0e-4a8e-9d1b-2f4c1e6a7b90"],
    },
}


def _text(body: dict, name: str, required: bool) -> str | None:
    if name not in body:
        if required:
            raise MissingField(f"'{name}' is required", field=name)
        return None
    value = body[name]
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string", code="wrong_type", field=name)
    if "\x00" in value:
        raise ValidationFailed(
            f"'{name}' contains a NUL character", code="invalid_characters", field=name
        )
    return value


def required_str(body: dict, name: str) -> str:
    return _text(body, name, required=True)


def optional_str(body: dict, name: str) -> str | None:
    return _text(body, name, required=False)


def username(value: str) -> str:
    if not USERNAME.fullmatch(value):
        raise ValidationFailed(
            "username must be 1-25 letters, digits or underscores",
            code="invalid_username",
        )
    return value


def email(value: str) -> str:
    if len(value) > MAX_EMAIL or not EMAIL.fullmatch(value):
        raise ValidationFailed("email is not a valid address", code="invalid_email")
    return value


def password(value: str) -> str:
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValidationFailed(
            f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters",
            code="invalid_password",
        )
    return value


def password_to_check(value: str) -> str:
    """A presented password (login, current password): no password that could
    have been set is longer, so a longer one is refused before any hashing."""
    if len(value) > MAX_PASSWORD:
        raise ValidationFailed(
            f"password must be at most {MAX_PASSWORD} characters",
            code="invalid_password",
        )
    return value


def existing_username(value: str) -> str:
    """A username to look up; NotFound for one no account can have.

    Checked before any cache or lookup: case folding in a lookup would map
    lookalikes such as the Kelvin sign (U+212A) onto a real, ASCII name.
    """
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise NotFound("No such user", code="user_not_found")
    return value


def bounded(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise ValidationFailed(
            f"{name} must be at most {limit} characters", code=f"invalid_{name}"
        )
    return value


def idempotency_key(value: str) -> str:
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 visible ASCII characters",
            code="invalid_idempotency_key",
        )
    return value


def tweet_content(value: str) -> str:
    text = unicodedata.normalize("NFC", value)
    if not text.strip(WHITESPACE):
        raise ValidationFailed(
            "tweet_content must not be empty or blank", code="invalid_tweet_content"
        )
    if len(text) > MAX_TWEET_CHARS:
        raise ValidationFailed(
            f"tweet_content must be at most {MAX_TWEET_CHARS} characters",
            code="invalid_tweet_content",
        )
    return text


def parse_id(raw: str, name: str = "id") -> int | None:
    """A decimal id string as an int; None when it cannot name any row."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    if len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None
