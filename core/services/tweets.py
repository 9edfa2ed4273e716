"""Tweets, replies, likes and retweets."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging

import orjson
import peewee
import redis
from peewee import fn

from core import db, hydrate, outbox, validation
from core.container import Deps
from core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from core.models import IdempotencyKey, Like, Tweet

log = logging.getLogger(__name__)


IDEMPOTENCY_WINDOW = datetime.timedelta(hours=24)


def _tweet_or_404(tweet_id: int | None, for_update: bool = False) -> Tweet:
    """The tweet's id, author and original (if a retweet); NotFound if gone."""
    row = None
    if tweet_id is not None:
        row = (
            Tweet.select(Tweet.id, Tweet.author, Tweet.retweet_of)
            .where(Tweet.id == tweet_id)
            .for_update(for_update)
            .first()
        )
    if row is None:
        raise NotFound("No such tweet", code="tweet_not_found")
    return row


def get(tweet_id: int | None, viewer_id: int | None) -> dict:
    tweets = hydrate.load([tweet_id], viewer_id) if tweet_id else {}
    if tweet_id not in tweets:
        raise NotFound("No such tweet", code="tweet_not_found")
    return tweets[tweet_id]


def _after_commit_add(deps: Deps, author_id: int, tweet_id: int, rendered=None) -> None:
    try:
        deps.timelines.add_own(author_id, tweet_id, rendered)
    except redis.RedisError as ex:
        # The fan-out job writes the author's keys too; reads fall back meanwhile.
        log.warning("own timeline write deferred: %s", ex)


def create(
    deps: Deps,
    author_id: int,
    body: dict,
    idempotency_key: str | None,
    request_id: str | None = None,
) -> tuple[int, dict]:
    """Post a tweet or reply; returns (HTTP status, tweet)."""
    content = validation.tweet_content(validation.required_str(body, "tweet_content"))
    reply_to = body.get("reply_to")
    if reply_to is not None:
        if not isinstance(reply_to, str):
            raise ValidationFailed(
                "reply_to must be a tweet id string", code="invalid_reply_to"
            )
        reply_to = validation.parse_id(reply_to)
        if reply_to is None:
            raise NotFound(
                "The tweet replied to does not exist", code="tweet_not_found"
            )
    request_hash = hashlib.sha256(orjson.dumps([content, str(reply_to)])).digest()
    tweet_id = deps.ids.next_id()

    params = {
        "id": tweet_id,
        "author": author_id,
        "content": content,
        "reply": reply_to,
        **outbox.job_params(
            outbox.FANOUT_TWEET, tweet_id, author_id, request_id=request_id
        ),
    }

    def work():
        if idempotency_key is not None:
            seen = _claim_idempotency_key(
                author_id, idempotency_key, request_hash, tweet_id
            )
            if seen is not None:
                return seen, None
        return None, _insert(params)

    try:
        if idempotency_key is None:
            replayed, row = None, _insert(params)  # one atomic statement
        else:
            replayed, row = db.in_transaction(work)
    except peewee.IntegrityError:
        raise Unauthorized(
            "The account no longer exists", code="invalid_token"
        ) from None
    if replayed is not None:
        # the first tweet may have been deleted since: then only its id remains
        first = hydrate.load([replayed], author_id).get(replayed)
        return 201, first or {"id": str(replayed)}
    tweet = hydrate.render_row(row)
    # the read cache gets it too: its followers' first pages need not take the
    # long path for it
    _after_commit_add(deps, author_id, tweet_id, tweet)
    return 201, tweet


# The tweet, its fan-out job and the rendered row in one statement: in
# autocommit mode one statement is one transaction, and one round trip. It is
# prepared once per connection: planning this statement cost Postgres more
# than running it (bench/README.md, "Creates").
_CREATE = (
    "WITH t AS (INSERT INTO tweets (id, author_id, content, reply_to_id)"
    " SELECT $1::bigint, $2::bigint, $3::text, $4::bigint"
    " WHERE $4::bigint IS NULL"
    "  OR EXISTS (SELECT 1 FROM tweets WHERE id = $4::bigint)"
    " RETURNING *),"
    " o AS (" + outbox.insert_select_prepared(5) + " FROM t)"
    " SELECT t.id, t.author_id, u.username, t.content, t.created_at,"
    " t.like_count, t.retweet_count, t.reply_to_id"
    " FROM t JOIN users u ON u.id = t.author_id"
)


def _insert(params: dict):
    rows = db.fetchall_prepared(
        "tweet_create",
        _CREATE,
        (
            params["id"],
            params["author"],
            params["content"],
            params["reply"],
            *outbox.prepared_args(params),
        ),
    )
    if not rows:  # the WHERE found no such parent
        raise NotFound("The tweet replied to does not exist", code="tweet_not_found")
    return rows[0]


def _claim_idempotency_key(author_id, key, request_hash, tweet_id) -> int | None:
    """None if this key is new (and now ours); else the first request's tweet id."""
    validation.idempotency_key(key)
    mine = (IdempotencyKey.user == author_id, IdempotencyKey.key == key)
    (
        IdempotencyKey.delete()
        .where(*mine, IdempotencyKey.created_at < fn.now() - IDEMPOTENCY_WINDOW)
        .execute()
    )
    claimed = (
        IdempotencyKey.insert(
            user=author_id, key=key, request_hash=request_hash, tweet_id=tweet_id
        )
        .on_conflict_ignore()
        .as_rowcount()
        .execute()
    )
    if claimed:
        return None
    first = (
        IdempotencyKey.select(IdempotencyKey.request_hash, IdempotencyKey.tweet_id)
        .where(*mine)
        .get()
    )
    if bytes(first.request_hash) != request_hash:
        raise ValidationFailed(
            "This Idempotency-Key was used with another body",
            code="idempotency_key_reused",
        )
    return first.tweet_id


def delete(deps: Deps, user_id: int, tweet_id: int | None, request_id=None) -> None:
    """Delete a tweet (author only); its retweets go with it, replies stay."""

    def work():
        tweet = _tweet_or_404(tweet_id, for_update=True)
        author_id, original = tweet.author_id, tweet.retweet_of_id
        if author_id != user_id:
            raise Forbidden("Only the author can delete a tweet", code="not_author")
        gone = Tweet.select(Tweet.id, Tweet.author).where(Tweet.retweet_of == tweet_id)
        entries = [[tweet_id, author_id]] + [[r.id, r.author_id] for r in gone]
        Tweet.delete().where(Tweet.id == tweet_id).execute()
        outbox.enqueue(outbox.REMOVE_TWEETS, entries, request_id=request_id)
        return entries, original

    entries, original = db.in_transaction(work)
    _after_commit_remove(deps, user_id, entries)
    if original is not None:  # a retweet deleted by its id: the count drops
        with contextlib.suppress(NotFound):
            _counts_after(deps, user_id, original)


def _after_commit_remove(deps: Deps, user_id: int, entries) -> None:
    deps.timelines.cache.tweets_deleted(entries)
    deps.timelines.cache.social_changed(user_id)
    try:
        for tweet_id, author_id in entries:
            deps.timelines.remove_own(author_id, [tweet_id])
    except redis.RedisError as ex:
        log.warning("own timeline removal deferred: %s", ex)


def _original_id(tweet_id: int | None) -> int:
    """Likes and retweets of a retweet apply to its original."""
    return _tweet_or_404(tweet_id).retweet_of_id or tweet_id


def like(deps: Deps, user_id: int, tweet_id: int | None) -> dict:
    target = _original_id(tweet_id)
    try:
        db.in_transaction(
            lambda: (
                Like.insert(tweet=target, user=user_id)
                .on_conflict_ignore()
                .as_rowcount()
                .execute()
            )
        )
    except peewee.IntegrityError:  # deleted between the check and the insert
        raise NotFound("No such tweet", code="tweet_not_found") from None
    likes, _ = _counts_after(deps, user_id, target)
    return {"liked": True, "like_count": likes}


def dislike(deps: Deps, user_id: int, tweet_id: int | None) -> dict:
    target = _original_id(tweet_id)
    db.in_transaction(
        lambda: (
            Like.delete().where(Like.tweet == target, Like.user == user_id).execute()
        )
    )
    likes, _ = _counts_after(deps, user_id, target)
    return {"liked": False, "like_count": likes}


def _counts_after(deps: Deps, user_id: int, tweet_id: int) -> tuple[int, int]:
    """Counts read after the caller's commit; the read caches learn them too."""
    deps.timelines.cache.social_changed(user_id)
    row = (
        Tweet.select(Tweet.author, Tweet.like_count, Tweet.retweet_count)
        .where(Tweet.id == tweet_id)
        .first()
    )
    if row is None:
        raise NotFound("No such tweet", code="tweet_not_found")
    deps.timelines.cache.counts_changed(
        [(tweet_id, row.author_id, row.like_count, row.retweet_count)]
    )
    return row.like_count, row.retweet_count


def retweet(
    deps: Deps, user_id: int, tweet_id: int | None, request_id=None
) -> tuple[int, dict]:
    """Retweet (201), or return the existing retweet (200)."""
    target = _original_id(tweet_id)
    new_id = deps.ids.next_id()

    def work():
        existing = _retweet_of(user_id, target)
        if existing is not None:
            return existing, False
        Tweet.insert(id=new_id, author=user_id, content="", retweet_of=target).execute()
        outbox.enqueue(outbox.FANOUT_TWEET, new_id, user_id, request_id=request_id)
        return new_id, True

    try:
        retweet_id, created = db.in_transaction(work)
    except peewee.IntegrityError:
        # a concurrent identical retweet won the unique index, or the original
        # was deleted meanwhile: answer with whatever exists now
        retweet_id, created = _retweet_of(user_id, target), False
        if retweet_id is None:
            raise NotFound("No such tweet", code="tweet_not_found") from None
    if created:
        _after_commit_add(deps, user_id, retweet_id)
        _counts_after(deps, user_id, target)
    return (201 if created else 200), get(retweet_id, user_id)


def _retweet_of(user_id: int, target: int) -> int | None:
    """The id of the user's retweet of ``target``, if any."""
    return (
        Tweet.select(Tweet.id)
        .where(Tweet.author == user_id, Tweet.retweet_of == target)
        .scalar()
    )


def unretweet(deps: Deps, user_id: int, tweet_id: int | None, request_id=None) -> dict:
    """Undo a retweet; ``tweet_id`` may name the original or the retweet."""
    target = _original_id(tweet_id)

    def work():
        deleted = (
            Tweet.delete()
            .where(Tweet.author == user_id, Tweet.retweet_of == target)
            .returning(Tweet.id)
            .dicts()
            .execute()
        )
        gone = [row["id"] for row in deleted]  # one at most: a unique index
        if gone:
            outbox.enqueue(
                outbox.REMOVE_TWEETS, [[gone[0], user_id]], request_id=request_id
            )
        return gone

    gone = db.in_transaction(work)
    if gone:
        _after_commit_remove(deps, user_id, [(gone[0], user_id)])
    _, retweets = _counts_after(deps, user_id, target)
    return {"retweeted": False, "retweet_count": retweets}
