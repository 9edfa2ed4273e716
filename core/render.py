"""Turning rows into the JSON objects of the REST contract."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-28T05:00:00.123Z."""
    value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


USER_COLUMNS = (
    "u.id, u.username, u.display_name, u.bio, u.created_at,"
    " u.follower_count, u.following_count, u.tweet_count, u.email"
)


def user(row, include_email: bool = False) -> dict:
    """Row of USER_COLUMNS to a User object; email only for its owner."""
    out = {
        "id": str(row[0]),
        "username": row[1],
        "display_name": row[2],
        "bio": row[3],
        "created_at": rfc3339(row[4]),
        "follower_count": row[5],
        "following_count": row[6],
        "tweet_count": row[7],
    }
    if include_email:
        out["email"] = row[8]
    return out
