"""Accounts: sign-up, profiles, edits and deletion."""

from __future__ import annotations

import contextlib

import peewee
import redis

from core import db, outbox, render, revocation, validation
from core.container import Deps
from core.errors import Conflict, Forbidden, MissingField, NotFound, Unauthorized
from core.services import auth

_BY_NAME = (
    f"SELECT {render.USER_COLUMNS} FROM users u WHERE lower(u.username) = lower(%s)"
)
_BY_ID = f"SELECT {render.USER_COLUMNS} FROM users u WHERE u.id = %s"
PURGE_CHUNK = 1000


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
            db.execute(
                "INSERT INTO users (id, username, email, password_hash)"
                " VALUES (%s, %s, %s, %s)",
                (user_id, username, email, password_hash),
            )
    except peewee.IntegrityError as ex:
        raise _conflict(ex) from None
    return render.user(db.fetchone(_BY_ID, (user_id,)), include_email=True)


def row_by_username(username: str):
    """The user row for ``username`` (any case); NotFound if none."""
    row = db.fetchone(_BY_NAME, (validation.existing_username(username or ""),))
    if row is None:
        raise NotFound("No such user", code="user_not_found")
    return row


def id_by_username(username: str) -> int:
    return row_by_username(username)[0]


def profile(username: str, viewer_id: int | None) -> dict:
    row = row_by_username(username)
    return render.user(row, include_email=row[0] == viewer_id)


def me(user_id: int) -> dict:
    row = db.fetchone(_BY_ID, (user_id,))
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
        row = db.fetchone("SELECT password_hash FROM users WHERE id = %s", (user_id,))
        if row is None:
            raise Unauthorized("The account no longer exists", code="invalid_token")
        with (guard or auth.unguarded)(auth.account_key(user_id)):
            if not deps.passwords.verify(row[0], current):
                raise Forbidden("The current password is wrong", code="wrong_password")
        changes["password_hash"] = deps.passwords.hash(new_password)
    old_name = None
    try:
        with db.database.atomic():
            if "username" in changes:
                row = db.fetchone(
                    "SELECT username FROM users WHERE id = %s", (user_id,)
                )
                old_name = row[0] if row else None
            if changes:
                assignments = ", ".join(f"{column} = %s" for column in changes)
                count = db.execute(
                    f"UPDATE users SET {assignments} WHERE id = %s",
                    (*changes.values(), user_id),
                )
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


def _forget(deps: Deps, user_id: int, username: str, touched: list[int]) -> None:
    """Read caches after an account deletion: its tweets now miss their author
    (so Postgres is asked, and says gone), and counts it was part of drop."""
    cache = deps.timelines.cache
    cache.user_deleted(user_id, username)
    for start in range(0, len(touched), 500):
        rows = db.fetchall(
            "SELECT id, author_id, like_count, retweet_count FROM tweets"
            " WHERE id = ANY(%s)",
            (touched[start : start + 500],),
        )
        cache.counts_changed(rows)


def _end_other_sessions(deps: Deps, user_id: int, keep_family: str) -> None:
    families = db.fetchall(
        "WITH r AS (UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE user_id = %s AND family_id::text <> %s AND revoked_at IS NULL"
        " RETURNING family_id::text AS f) SELECT DISTINCT f FROM r",
        (user_id, keep_family),
    )
    for (family,) in families:
        deps.denylist.revoke(
            user_id, revocation.FAMILY, family, deps.settings.access_token_ttl_s + 60
        )


def delete(deps: Deps, user_id: int, request_id: str | None = None) -> None:
    """Delete the account and everything it made; counters of others follow."""

    def work():
        followers = [
            r[0]
            for r in db.fetchall(
                "SELECT follower_id FROM follows WHERE followee_id = %s", (user_id,)
            )
        ]
        # retweets others made of this user's tweets vanish with them
        retweets = db.fetchall(
            "SELECT r.id, r.author_id FROM tweets r JOIN tweets o"
            " ON o.id = r.retweet_of_id WHERE o.author_id = %s AND r.author_id <> %s",
            (user_id, user_id),
        )
        # authors this account's follow kept exactly at the threshold go back
        # to being pushed once it is gone
        crossing = [
            r[0]
            for r in db.fetchall(
                "SELECT f.followee_id FROM follows f"
                " JOIN users u ON u.id = f.followee_id"
                " WHERE f.follower_id = %s AND u.follower_count = %s",
                (user_id, deps.settings.fanout_threshold),
            )
        ]
        # counts that drop with this account's likes and retweets
        touched = [
            r[0]
            for r in db.fetchall(
                "SELECT tweet_id FROM likes WHERE user_id = %s UNION"
                " SELECT retweet_of_id FROM tweets WHERE author_id = %s"
                " AND retweet_of_id IS NOT NULL",
                (user_id, user_id),
            )
        ]
        (username,) = db.fetchone(
            "SELECT username FROM users WHERE id = %s", (user_id,)
        ) or ("",)
        if db.execute("DELETE FROM users WHERE id = %s", (user_id,)) == 0:
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
            outbox.enqueue(
                outbox.REMOVE_TWEETS, [list(r) for r in retweets], request_id=request_id
            )

        return touched, username

    touched, username = db.in_transaction(work)
    _forget(deps, user_id, username, touched)
    # If Redis is away, reads still filter the deleted tweets out.
    with contextlib.suppress(redis.RedisError):
        deps.timelines.account_deleted(user_id)
