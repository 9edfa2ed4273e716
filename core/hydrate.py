"""Loading tweets by id and rendering them, in two queries per page."""

from __future__ import annotations

from core import db
from core.render import rfc3339

TWEET_COLUMNS = (
    "t.id, t.author_id, u.username, t.content, t.created_at, t.like_count,"
    " t.retweet_count, t.reply_to_id, t.retweet_of_id"
)
_SELECT = (
    f"SELECT {TWEET_COLUMNS} FROM tweets t JOIN users u ON u.id = t.author_id"
    " WHERE t.id = ANY(%s)"
)


def _base(row) -> dict:
    return {
        "id": str(row[0]),
        "user_id": row[2],
        "author_id": str(row[1]),
        "tweet_content": row[3],
        "created_at": rfc3339(row[4]),
        "like_count": row[5],
        "retweet_count": row[6],
        "reply_to": str(row[7]) if row[7] is not None else None,
        "retweet_of": None,
    }


def load(tweet_ids: list[int], viewer_id: int | None = None) -> dict[int, dict]:
    """Rendered live tweets by id (deleted ones are simply absent)."""
    if not tweet_ids:
        return {}
    rows = db.fetchall(_SELECT, (list(tweet_ids),))
    originals_ids = [r[8] for r in rows if r[8] is not None]
    originals = (
        {r[0]: r for r in db.fetchall(_SELECT, (originals_ids,))}
        if (originals_ids)
        else {}
    )
    shown = {r[0] for r in rows} | set(originals)
    liked, retweeted = _viewer_flags(viewer_id, list(shown))
    out = {}
    for row in rows:
        tweet = _with_flags(_base(row), row[0], viewer_id, liked, retweeted)
        if row[8] is not None:
            original = originals.get(row[8])
            if original is None:
                continue  # the original was deleted: so is this retweet
            tweet["retweet_of"] = _with_flags(
                _base(original), original[0], viewer_id, liked, retweeted
            )
        out[row[0]] = tweet
    return out


def _viewer_flags(viewer_id, ids: list[int]) -> tuple[set, set]:
    if viewer_id is None or not ids:
        return set(), set()
    liked = {
        r[0]
        for r in db.fetchall(
            "SELECT tweet_id FROM likes WHERE user_id = %s AND tweet_id = ANY(%s)",
            (viewer_id, ids),
        )
    }
    retweeted = {
        r[0]
        for r in db.fetchall(
            "SELECT retweet_of_id FROM tweets"
            " WHERE author_id = %s AND retweet_of_id = ANY(%s)",
            (viewer_id, ids),
        )
    }
    return liked, retweeted


def _with_flags(tweet: dict, tweet_id: int, viewer_id, liked, retweeted) -> dict:
    if viewer_id is not None:
        tweet["liked"] = tweet_id in liked
        tweet["retweeted"] = tweet_id in retweeted
    return tweet
