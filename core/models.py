"""The schema as peewee models, for queries written as query chains.

``migrations/`` stays the source of truth for the DDL: these models never
create or alter a table (``tests/core/test_models.py`` checks that they agree
with the migrated schema column by column). Database defaults (``now()``, the
counters' zeros) are left to Postgres, so the fields name no Python defaults,
and the counters are the triggers' to keep: code only reads them.
"""

from __future__ import annotations

from peewee import (
    SQL,
    BigAutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    CompositeKey,
    ForeignKeyField,
    IntegerField,
    Model,
    NodeList,
    TextField,
    UUIDField,
    fn,
)
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from core.db import database


def seconds(interval):
    """``extract(epoch FROM interval)``: an interval in (fractional) seconds."""
    return fn.extract(NodeList((SQL("epoch FROM"), interval)))


class BaseModel(Model):
    class Meta:
        database = database


class User(BaseModel):
    id = BigIntegerField(primary_key=True)
    username = CharField(max_length=25)  # unique by lower(): users_username_ci
    email = CharField(max_length=254)  # unique by lower(): users_email_ci
    password_hash = TextField()
    display_name = CharField(max_length=50)
    bio = CharField(max_length=160)
    created_at = DateTimeTZField()
    follower_count = IntegerField()
    following_count = IntegerField()
    tweet_count = IntegerField()
    # last use of the service, written at most once a day (fan-out skips
    # followers inactive for INACTIVE_DAYS)
    active_at = DateTimeTZField()

    class Meta:
        table_name = "users"

    def following(self):
        """The users this one follows, most recently followed first."""
        return (
            User.select()
            .join(Follow, on=Follow.followee)
            .where(Follow.follower == self.id)
            .order_by(Follow.id.desc())
        )

    def followers(self):
        """The users following this one, most recent first."""
        return (
            User.select()
            .join(Follow, on=Follow.follower)
            .where(Follow.followee == self.id)
            .order_by(Follow.id.desc())
        )


class Follow(BaseModel):
    follower = ForeignKeyField(
        User, column_name="follower_id", backref="following_links", on_delete="CASCADE"
    )
    followee = ForeignKeyField(
        User, column_name="followee_id", backref="follower_links", on_delete="CASCADE"
    )
    # a snowflake id: pages and fan-out chunks are sliced by it
    id = BigIntegerField()
    created_at = DateTimeTZField()

    class Meta:
        table_name = "follows"
        primary_key = CompositeKey("follower", "followee")


class Tweet(BaseModel):
    id = BigIntegerField(primary_key=True)
    author = ForeignKeyField(
        User, column_name="author_id", backref="tweets", on_delete="CASCADE"
    )
    content = TextField()
    created_at = DateTimeTZField()
    # no foreign key: a reply keeps naming its parent after the parent is gone
    reply_to_id = BigIntegerField(null=True)
    retweet_of = ForeignKeyField(
        "self",
        column_name="retweet_of_id",
        null=True,
        backref="retweets",
        on_delete="CASCADE",
    )
    like_count = IntegerField()
    retweet_count = IntegerField()

    class Meta:
        table_name = "tweets"


class Like(BaseModel):
    tweet = ForeignKeyField(Tweet, column_name="tweet_id", on_delete="CASCADE")
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    created_at = DateTimeTZField()

    class Meta:
        table_name = "likes"
        primary_key = CompositeKey("tweet", "user")


class RefreshToken(BaseModel):
    token_hash = BlobField(primary_key=True)  # SHA-256 of the token
    family_id = UUIDField()
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    created_at = DateTimeTZField()
    expires_at = DateTimeTZField()
    used_at = DateTimeTZField(null=True)
    revoked_at = DateTimeTZField(null=True)

    class Meta:
        table_name = "refresh_tokens"


class Revocation(BaseModel):
    """The durable copy of the Redis denylist."""

    kind = TextField()
    value = TextField()
    expires_at = DateTimeTZField()
    # null only for rows of releases before 0005 whose owner was unknown
    user_id = BigIntegerField(null=True)

    class Meta:
        table_name = "revocations"
        primary_key = CompositeKey("kind", "value")


class IdempotencyKey(BaseModel):
    user = ForeignKeyField(User, column_name="user_id", on_delete="CASCADE")
    key = TextField()
    request_hash = BlobField()
    tweet_id = BigIntegerField()  # no foreign key: the tweet may be deleted
    created_at = DateTimeTZField()

    class Meta:
        table_name = "idempotency_keys"
        primary_key = CompositeKey("user", "key")


class Outbox(BaseModel):
    """A job committed with the data it describes (see ``core.outbox``)."""

    id = BigAutoField()
    message_id = UUIDField(unique=True)
    queue_name = TextField()
    actor_name = TextField()
    args = BinaryJSONField()
    options = BinaryJSONField()
    created_at = DateTimeTZField()
    available_at = DateTimeTZField()
    attempts = IntegerField()

    class Meta:
        table_name = "outbox"


class OutboxRelayState(BaseModel):
    """One row: whether a relay sleeps on LISTEN (migrations 0003, 0004)."""

    one = BooleanField(primary_key=True)
    idle = BooleanField()

    class Meta:
        table_name = "outbox_relay_state"


MODELS = (
    User,
    Follow,
    Tweet,
    Like,
    RefreshToken,
    Revocation,
    IdempotencyKey,
    Outbox,
    OutboxRelayState,
)
