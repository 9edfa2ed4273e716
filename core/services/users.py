"""Accounts: sign-up, profiles, edits and deletion."""

from __future__ import annotations

import contextlib

import peewee
import redis
from peewee import fn

from core import db, outbox, render, revocation, validation
from core.container import Deps
from core.errors import Conflict, Forbidden, MissingField, NotFound, Unauthorized
from core.models import Follow, Like, RefreshToken, Tweet, User
from core.services import auth

# What a profile shows (render.user): every column but the password hash.
PROFILE = (
    User.id,
    User.username,
    User.display_name,
    User.bio,
    User.created_at,
    User.follower_count,
    User.following_count,
    User.tweet_count,
    User.email,
)
PURGE_CHUNK = 1000


def _profile_where(*conditions) -> dict | None:
    return User.select(*PROFILE).where(*conditions).dicts().first()


def _by_id(user_id: int) -> dict | None:
    return _profile_where(User.id == user_id)


def _conflict(ex: Exception) -> Conflict:
    name = db.constraint_name(ex)
    if "email" in name:
        return Conflict("That email is already registered", code="email_taken")
    return Conflict("That username is taken", code="username_taken")


def signup(deps: Deps, body: dict) -> dict:
    """Create an account; the password is stored only as an argon2id hash."""
    username = validation.username(validation.required_str(body, "username"))
    email = validation.email(validation.required_str(body, "email"))
    password = validation.password(validation.required_str(body, "password"))
    password_hash = deps.passwords.hash(password)
    user_id = deps.ids.next_id()
    try:
        with db.database.atomic():
            User.insert(
                id=user_id, username=username, email=email, password_hash=password_hash
            ).execute()
    except peewee.IntegrityError as ex:
        raise _conflict(ex) from None
    return render.user(_by_id(user_id), include_email=True)


def row_by_username(username: str):
    """The user row for ``username`` (any case); NotFound if none."""
    name = validation.existing_username(username or "")
    # lower() on both sides: the users_username_ci index serves it
    row = _profile_where(fn.lower(User.username) == fn.lower(name))
    if row is None:
        raise NotFound("No such user", code="user_not_found")
    return row


def id_by_username(username: str) -> int:
    return row_by_username(username)["id"]


def profile(username: str, viewer_id: int | None) -> dict:
    row = row_by_username(username)
    return render.user(row, include_email=row["id"] == viewer_id)


def me(user_id: int) -> dict:
    row = _by_id(user_id)
    if row is None:
        raise Unauthorized("The account no longer exists", code="invalid_token")
    return render.user(row, include_email=True)


def update(deps: Deps, user_id: int, family_id: str, body: dict, guard=None) -> dict:
    """Edit the caller's profile; a password change ends every other session.

    ``guard(account)`` wraps the current-password check, as for a login: a
    stolen access token must not become an unlimited password oracle.
    """
    changes = {}
    if (value := validation.optional_str(body, "username")) is not None:
        changes["username"] = validation.username(value)
    if (value := validation.optional_str(body, "email")) is not None:
        changes["email"] = validation.email(value)
    if (value := validation.optional_str(body, "display_name")) is not None:
        changes["display_name"] = validation.bounded(
            value, "display_name", validation.MAX_DISPLAY_NAME
        )
    if (value := validation.optional_str(body, "bio")) is not None:
        changes["bio"] = validation.bounded(value, "bio", validation.MAX_BIO)
    new_password = validation.optional_str(body, "password")
    current = validation.optional_str(body, "current_password")
    if current is not None:
        validation.password_to_check(current)
    if new_password is not None:
        validation.password(new_password)
        if current is None:
            raise MissingField(
                "current_password is required to change the password",
                field="current_password",
            )
        stored = _column_of(user_id, User.password_hash)
        if stored is None:
            raise Unauthorized("The account no longer exists", code="invalid_token")
        with (guard or auth.unguarded)(auth.account_key(user_id)):
            if not deps.passwords.verify(stored, current):
                raise Forbidden("The current password is wrong", code="wrong_password")
        changes["password_hash"] = deps.passwords.hash(new_password)
    old_name = None
    try:
        with db.database.atomic():
            if "username" in changes:
                old_name = _column_of(user_id, User.username)
            if changes:
                count = User.update(**changes).where(User.id == user_id).execute()
                if count == 0:
                    raise Unauthorized(
                        "The account no longer exists", code="invalid_token"
                    )
            if new_password is not None:
                _end_other_sessions(deps, user_id, family_id)
    except peewee.IntegrityError as ex:
        raise _conflict(ex) from None
    profile = me(user_id)
    if old_name is not None:
        deps.timelines.cache.renamed(user_id, old_name, profile["username"])
    return profile


def _column_of(user_id: int, column):
    """One column of the user's row; None if there is no such user."""
    return User.select(column).where(User.id == user_id).scalar()


def _forget(deps: Deps, user_id: int, username: str, touched: list[int]) -> None:
    """Read caches after an account deletion: its tweets now miss their author
    (so Postgres is asked, and says gone), and counts it was part of drop."""
    cache = deps.timelines.cache
    cache.user_deleted(user_id, username)
    for start in range(0, len(touched), 500):
        rows = (
            Tweet.select(Tweet.id, Tweet.author, Tweet.like_count, Tweet.retweet_count)
            .where(Tweet.id.in_(touched[start : start + 500]))
            .tuples()  # counts_changed's (id, author, likes, retweets)
        )
        cache.counts_changed(list(rows))


def _end_other_sessions(deps: Deps, user_id: int, keep_family: str) -> None:
    revoked = (
        RefreshToken.update(revoked_at=fn.now())
        .where(
            RefreshToken.user == user_id,
            RefreshToken.family_id.cast("text") != keep_family,
            RefreshToken.revoked_at.is_null(),
        )
        .returning(RefreshToken.family_id.cast("text").alias("family"))
        .dicts()
    )
    # a family has a token per refresh: revoke each family once
    for family in dict.fromkeys(row["family"] for row in revoked.execute()):
        deps.denylist.revoke(
            user_id, revocation.FAMILY, family, deps.settings.access_token_ttl_s + 60
        )


def delete(deps: Deps, user_id: int, request_id: str | None = None) -> None:
    """Delete the account and everything it made; counters of others follow."""

    def work():
        followers = [
            f.follower_id
            for f in Follow.select(Follow.follower).where(Follow.followee == user_id)
        ]
        # retweets others made of this user's tweets vanish with them
        Original = Tweet.alias("o")
        retweets = [
            [r.id, r.author_id]
            for r in (
                Tweet.select(Tweet.id, Tweet.author)
                .join(Original, on=(Original.id == Tweet.retweet_of))
                .where(Original.author == user_id, Tweet.author != user_id)
            )
        ]
        # authors this account's follow kept exactly at the threshold go back
        # to being pushed once it is gone
        crossing = [
            f.followee_id
            for f in (
                Follow.select(Follow.followee)
                .join(User, on=(User.id == Follow.followee))
                .where(
                    Follow.follower == user_id,
                    User.follower_count == deps.settings.fanout_threshold,
                )
            )
        ]
        # counts that drop with this account's likes and retweets
        touched = [
            row["tweet_id"]
            for row in (
                Like.select(Like.tweet.alias("tweet_id")).where(Like.user == user_id)
                | Tweet.select(Tweet.retweet_of).where(
                    Tweet.author == user_id, Tweet.retweet_of.is_null(False)
                )
            ).dicts()
        ]
        username = _column_of(user_id, User.username) or ""
        if User.delete().where(User.id == user_id).execute() == 0:
            raise Unauthorized("The account no longer exists", code="invalid_token")
        deps.denylist.revoke(
            user_id,
            revocation.USER,
            str(user_id),
            deps.settings.access_token_ttl_s + 60,
        )
        for start in range(0, len(followers), PURGE_CHUNK):
            outbox.enqueue(
                outbox.PURGE_USER,
                user_id,
                followers[start : start + PURGE_CHUNK],
                request_id=request_id,
            )
        for author in crossing:
            outbox.enqueue(outbox.REPUSH_AUTHOR, author, request_id=request_id)
        if retweets:
            outbox.enqueue(outbox.REMOVE_TWEETS, retweets, request_id=request_id)

        return touched, username

    touched, username = db.in_transaction(work)
    _forget(deps, user_id, username, touched)
    # If Redis is away, reads still filter the deleted tweets out.
    with contextlib.suppress(redis.RedisError):
        deps.timelines.account_deleted(user_id)
