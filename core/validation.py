"""Field checks shared by every route: types first (400), then rules (422)."""

from __future__ import annotations

import re
import unicodedata

from core.errors import BadRequest, MissingField, NotFound, ValidationFailed

USERNAME = re.compile(r"[A-Za-z0-9_]{1,25}")
# Deliberately simple: one @, a dotted domain, no spaces or control characters.
EMAIL = re.compile(r"[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
MAX_TWEET_CHARS = 280
MIN_PASSWORD, MAX_PASSWORD = 8, 128
MAX_ID = (1 << 63) - 1


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
    value = value.strip()
    if len(value) > 254 or not EMAIL.fullmatch(value):
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


def tweet_content(value: str) -> str:
    text = unicodedata.normalize("NFC", value)
    if not text.strip():
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
