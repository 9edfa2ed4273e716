"""Loading tweets by id and rendering them, in one query per page.

One round trip fetches each tweet, its author, the original of a retweet, the
viewer's liked/retweeted flags and (for home timelines) whether the reader still
follows the author: on the read path, round trips cost more than the rows.
"""

from __future__ import annotations

from core import db, render
from core.render import rfc3339

# Hand-written: this runs for every timeline page (see README, "Queries").
# Columns are named, the original's with an ``o_`` prefix, and read by name.
_COLUMNS = (
    "{t}.id AS {p}id, {t}.author_id AS {p}author_id, {u}.username AS {p}username,"
    " {t}.content AS {p}content, {t}.created_at AS {p}created_at,"
    " {t}.like_count AS {p}like_count, {t}.retweet_count AS {p}retweet_count,"
    " {t}.reply_to_id AS {p}reply_to_id"
)
_FLAGS = (
    " EXISTS (SELECT 1 FROM likes l WHERE l.tweet_id = {t}.id"
    "  AND l.user_id = $2::bigint) AS {p}liked,"
    " EXISTS (SELECT 1 FROM tweets r WHERE r.retweet_of_id = {t}.id"
    "  AND r.author_id = $2::bigint) AS {p}retweeted"
)
_SQL = (
    "SELECT "
    + _COLUMNS.format(t="t", u="u", p="")
    + ", t.author_id = $3::bigint OR EXISTS (SELECT 1 FROM follows f"
    "  WHERE f.follower_id = $3::bigint AND f.followee_id = t.author_id)"
    " AS followed,"
    + _FLAGS.format(t="t", p="")
    + ", o.id IS NOT NULL AS is_retweet, "
    + _COLUMNS.format(t="o", u="ou", p="o_")
    + ","
    + _FLAGS.format(t="o", p="o_")
    + " FROM unnest($1::bigint[]) AS wanted(id)"
    " JOIN tweets t ON t.id = wanted.id JOIN users u ON u.id = t.author_id"
    " LEFT JOIN tweets o ON o.id = t.retweet_of_id"
    " LEFT JOIN users ou ON ou.id = o.author_id"
)


def render_row(row, liked: bool = False, retweeted: bool = False) -> dict:
    """A tweet that is not a retweet, from a row with the hydration columns
    (``id``, ``author_id``, ``username``, ``content``, ...) by name."""
    tweet = _render(row, "", viewer=False)
    tweet.update(liked=liked, retweeted=retweeted)
    return tweet


def _render(row, prefix: str, viewer: bool) -> dict:
    """The tweet of ``row``'s columns named with ``prefix`` ("" or "o_")."""

    def col(name: str):
        return getattr(row, prefix + name)

    fixed = {
        "id": col("id"),
        "author_id": col("author_id"),
        "tweet_content": col("content"),
        "created_at": rfc3339(col("created_at")),
        "reply_to": col("reply_to_id"),
    }
    flags = (col("liked"), col("retweeted")) if viewer else None
    return render.tweet(
        fixed, col("username"), col("like_count"), col("retweet_count"), flags
    )


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
    out = {}
    for row in rows:
        if reader_id is not None and not row.followed:
            continue
        tweet = _render(row, "", viewer)
        if row.is_retweet:
            tweet["retweet_of"] = _render(row, "o_", viewer)
        out[row.id] = tweet
    return out
