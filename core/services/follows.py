"""The social graph: follow, unfollow, and the follower/following lists."""

from __future__ import annotations

import logging

import redis

from core import db, outbox, render
from core.container import Deps
from core.errors import ValidationFailed
from core.services import users

log = logging.getLogger(__name__)


def _target(user_id: int, username: str) -> int:
    if not username:
        raise ValidationFailed("username is required", code="missing_field")
    target = users.id_by_username(username)
    if target == user_id:
        raise ValidationFailed("You cannot follow yourself", code="self_follow")
    return target


def follow(deps: Deps, user_id: int, username: str, request_id=None) -> bool:
    """Follow ``username``; repeating it changes nothing (keeps its place)."""
    target = _target(user_id, username)

    def work():
        inserted = db.fetchone(
            "INSERT INTO follows (follower_id, followee_id, id) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (user_id, target, deps.ids.next_id()),
        )
        if not inserted:
            return False
        # Push-path authors' recent tweets are copied into the new
        # follower's home; pulled authors are merged at read time anyway.
        outbox.enqueue(outbox.BACKFILL_FOLLOW, user_id, target, request_id=request_id)
        return _follower_count(target) == deps.settings.fanout_threshold

    crossed = db.in_transaction(work)
    _after_commit(deps, user_id, crossed)
    return True


def _follower_count(user_id: int) -> int:
    # Our trigger holds the author's row lock, so this count is exact and
    # exactly one follow or unfollow sees the author cross the threshold.
    return db.fetchone("SELECT follower_count FROM users WHERE id = %s", (user_id,))[0]


def _after_commit(deps: Deps, user_id: int, crossed: bool) -> None:
    cache = deps.timelines.cache
    cache.social_changed(user_id)
    if crossed:
        cache.threshold_crossed()


def unfollow(deps: Deps, user_id: int, username: str, request_id=None) -> bool:
    """Stop following; the author's entries leave the caller's home at once."""
    target = _target(user_id, username)

    def work():
        removed = db.execute(
            "DELETE FROM follows WHERE follower_id = %s AND followee_id = %s",
            (user_id, target),
        )
        if not removed:
            return False
        if _follower_count(target) != deps.settings.fanout_threshold - 1:
            return False
        # Their tweets are pushed again from now on: copy the recent ones
        # into every follower's home (pulled ones were never pushed).
        outbox.enqueue(outbox.REPUSH_AUTHOR, target, request_id=request_id)
        return True

    crossed = db.in_transaction(work)
    _after_commit(deps, user_id, crossed)
    store = deps.timelines.store
    try:
        store.remove_authors([store.home_key(user_id)], [target])
    except redis.RedisError as ex:
        log.warning("unfollow strip deferred to read-time filtering: %s", ex)
    return False


def _page(deps: Deps, kind: str, username: str, cursor: str | None, limit: int):
    owner = users.id_by_username(username)
    before = deps.cursors.decode(cursor, kind, owner) if cursor else (1 << 63) - 1
    mine, other = (
        ("followee_id", "follower_id")
        if kind == "followers"
        else ("follower_id", "followee_id")
    )
    rows = db.fetchall(
        f"SELECT f.id, {render.USER_COLUMNS} FROM follows f"
        f" JOIN users u ON u.id = f.{other}"
        f" WHERE f.{mine} = %s AND f.id < %s ORDER BY f.id DESC LIMIT %s",
        (owner, before, limit + 1),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = deps.cursors.encode(kind, owner, rows[-1][0]) if more else None
    return [render.user(r[1:]) for r in rows], next_cursor


def followers_page(deps: Deps, username: str, cursor, limit: int):
    return _page(deps, "followers", username, cursor, limit)


def following_page(deps: Deps, username: str, cursor, limit: int):
    return _page(deps, "following", username, cursor, limit)
