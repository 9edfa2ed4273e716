"""Loading tweets by id and rendering them, in one query per page.

One round trip fetches each tweet, its author, the original of a retweet, the
viewer's liked/retweeted flags and (for home timelines) whether the reader still
follows the author: on the read path, round trips cost more than the rows.
"""

from __future__ import annotations

from core import db, render
from core.render import rfc3339

_COLUMNS = (
    "{t}.id, {t}.author_id, {u}.username, {t}.content, {t}.created_at,"
    " {t}.like_count, {t}.retweet_count, {t}.reply_to_id"
)
_FLAGS = (
    " EXISTS (SELECT 1 FROM likes l WHERE l.tweet_id = {t}.id"
    "  AND l.user_id = $2::bigint),"
    " EXISTS (SELECT 1 FROM tweets r WHERE r.retweet_of_id = {t}.id"
    "  AND r.author_id = $2::bigint)"
)
_SQL = (
    "SELECT "
    + _COLUMNS.format(t="t", u="u")
    + ", t.author_id = $3::bigint OR EXISTS (SELECT 1 FROM follows f"
    "  WHERE f.follower_id = $3::bigint AND f.followee_id = t.author_id),"
    + _FLAGS.format(t="t")
    + ", o.id IS NOT NULL, "
    + _COLUMNS.format(t="o", u="ou")
    + ","
    + _FLAGS.format(t="o")
    + " FROM unnest($1::bigint[]) AS wanted(id)"
    " JOIN tweets t ON t.id = wanted.id JOIN users u ON u.id = t.author_id"
    " LEFT JOIN tweets o ON o.id = t.retweet_of_id"
    " LEFT JOIN users ou ON ou.id = o.author_id"
)
_WIDTH = 8  # columns per rendered tweet in a row


def render_row(row, liked: bool = False, retweeted: bool = False) -> dict:
    """A tweet that is not a retweet, from a row of the hydration columns."""
    tweet = _render(row, 0, 0, viewer=False)
    tweet.update(liked=liked, retweeted=retweeted)
    return tweet


def _render(row, at: int, flags_at: int, viewer: bool) -> dict:
    fixed = {
        "id": row[at],
        "author_id": row[at + 1],
        "tweet_content": row[at + 3],
        "created_at": rfc3339(row[at + 4]),
        "reply_to": row[at + 7],
    }
    flags = (row[flags_at], row[flags_at + 1]) if viewer else None
    return render.tweet(fixed, row[at + 2], row[at + 5], row[at + 6], flags)


def load(
    tweet_ids: list[int], viewer_id: int | None = None, reader_id: int | None = None
) -> dict[int, dict]:
    """Rendered live tweets by id; deleted ones are absent.

    With ``reader_id``, tweets whose author the reader neither is nor follows
    are absent too (home timelines re-check every entry this way).
    """
    if not tweet_ids:
        return {}
    # Planning this query costs more than running it: prepare it once.
    rows = db.fetchall_prepared(
        "hydrate_tweets", _SQL, (list(tweet_ids), viewer_id or 0, reader_id or 0)
    )
    viewer = viewer_id is not None
    original_at = _WIDTH + 4
    out = {}
    for row in rows:
        if reader_id is not None and not row[_WIDTH]:
            continue
        tweet = _render(row, 0, _WIDTH + 1, viewer)
        if row[original_at - 1]:
            tweet["retweet_of"] = _render(
                row, original_at, original_at + _WIDTH, viewer
            )
        out[row[0]] = tweet
    return out
