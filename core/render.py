"""Turning rows into the JSON objects of the REST contract."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-28T05:00:00.123Z."""
    value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


def user(row, include_email: bool = False) -> dict:
    """A User object from a row of users' columns (a mapping by column name);
    the email only for its owner."""
    out = {
        "id": str(row["id"]),
        "username": row["username"],
        "display_name": row["display_name"],
        "bio": row["bio"],
        "created_at": rfc3339(row["created_at"]),
        "follower_count": row["follower_count"],
        "following_count": row["following_count"],
        "tweet_count": row["tweet_count"],
    }
    if include_email:
        out["email"] = row["email"]
    return out


def tweet(fixed: dict, username: str, likes: int, retweets: int, flags=None) -> dict:
    """A Tweet object of the REST contract, the one place its shape is written.

    ``fixed`` holds what never changes (``id``, ``author_id``, ``tweet_content``,
    ``created_at`` as RFC 3339 text, ``reply_to``), whether it comes from
    Postgres (``core.hydrate``) or from the read cache (``core.read_cache``);
    ``flags`` is the viewer's (liked, retweeted), None for anonymous readers.
    """
    out = {
        "id": str(fixed["id"]),
        "user_id": username,
        "author_id": str(fixed["author_id"]),
        "tweet_content": fixed["tweet_content"],
        "created_at": fixed["created_at"],
        "like_count": likes,
        "retweet_count": retweets,
        "reply_to": str(fixed["reply_to"]) if fixed["reply_to"] is not None else None,
        "retweet_of": None,
    }
    if flags is not None:
        out["liked"], out["retweeted"] = flags
    return out
