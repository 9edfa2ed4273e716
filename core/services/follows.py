"""The social graph: follow, unfollow, and the follower/following lists."""

from __future__ import annotations

import logging

import redis

from core import db, outbox, render
from core.container import Deps
from core.errors import ValidationFailed
from core.models import Follow, User
from core.push_pull import is_pulled
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
        inserted = (
            Follow.insert(follower=user_id, followee=target, id=deps.ids.next_id())
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        if not inserted:
            return False
        # Push-path authors' recent tweets are copied into the new
        # follower's home; pulled authors are merged at read time anyway.
        outbox.enqueue(outbox.BACKFILL_FOLLOW, user_id, target, request_id=request_id)
        if _crossed(deps, _follower_count(target), up=True):
            # pulled from now on: its followers' cached pulled lists go
            outbox.enqueue(outbox.FORGET_SOCIAL, target, request_id=request_id)

    db.in_transaction(work)
    deps.timelines.cache.social_changed(user_id)
    return True


def _crossed(deps: Deps, count: int, up: bool) -> bool:
    """Did the follow (``up``) or unfollow that left ``count`` followers move
    the author across the push/pull line?"""
    before = count - 1 if up else count + 1
    threshold = deps.settings.fanout_threshold
    return is_pulled(count, threshold) != is_pulled(before, threshold)


def _follower_count(user_id: int) -> int:
    # Our trigger holds the author's row lock, so this count is exact and
    # exactly one follow or unfollow sees the author cross the threshold.
    return User.select(User.follower_count).where(User.id == user_id).scalar()


def unfollow(deps: Deps, user_id: int, username: str, request_id=None) -> bool:
    """Stop following; the author's entries leave the caller's home at once."""
    target = _target(user_id, username)

    def work():
        removed = (
            Follow.delete()
            .where(Follow.follower == user_id, Follow.followee == target)
            .execute()
        )
        if removed and _crossed(deps, _follower_count(target), up=False):
            # Their tweets are pushed again from now on: copy the recent ones
            # into every follower's home (pulled ones were never pushed).
            outbox.enqueue(outbox.REPUSH_AUTHOR, target, request_id=request_id)

    db.in_transaction(work)
    deps.timelines.cache.social_changed(user_id)
    try:
        deps.timelines.unfollowed(user_id, target)
    except redis.RedisError as ex:
        log.warning("unfollow strip deferred to read-time filtering: %s", ex)
    return False


def _page(deps: Deps, kind: str, username: str, cursor: str | None, limit: int):
    owner = users.id_by_username(username)
    before = deps.cursors.decode(cursor, kind, owner) if cursor else (1 << 63) - 1
    user = User(id=owner)
    related = user.followers() if kind == "followers" else user.following()
    rows = list(
        related.select(Follow.id.alias("follow_id"), *users.PROFILE)
        .where(Follow.id < before)
        .limit(limit + 1)
        .dicts()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1]["follow_id"] if more else None
    next_cursor = deps.cursors.encode(kind, owner, last) if more else None
    return [render.user(r) for r in rows], next_cursor


def followers_page(deps: Deps, username: str, cursor, limit: int):
    return _page(deps, "followers", username, cursor, limit)


def following_page(deps: Deps, username: str, cursor, limit: int):
    return _page(deps, "following", username, cursor, limit)
