"""Users, follows, tweets, likes, tokens, idempotency keys and the outbox.

Every foreign key says what happens on delete (the original's did not, so an
account with any activity could never be deleted). Counters are kept by
triggers so they equal the rows they count whatever path changes the rows,
cascades included; the triggers lock the two user rows of a follow in id order
so that crossing follows cannot deadlock.
"""

SCHEMA = r"""
CREATE TABLE users (
    id              bigint PRIMARY KEY,
    username        varchar(25)  NOT NULL,
    email           varchar(254) NOT NULL,
    password_hash   text         NOT NULL,
    display_name    varchar(50)  NOT NULL DEFAULT '',
    bio             varchar(160) NOT NULL DEFAULT '',
    created_at      timestamptz  NOT NULL DEFAULT now(),
    follower_count  integer      NOT NULL DEFAULT 0 CHECK (follower_count >= 0),
    following_count integer      NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    tweet_count     integer      NOT NULL DEFAULT 0 CHECK (tweet_count >= 0)
);
CREATE UNIQUE INDEX users_username_ci ON users (lower(username));
CREATE UNIQUE INDEX users_email_ci ON users (lower(email));

CREATE TABLE follows (
    follower_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id          bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followers_page ON follows (followee_id, id DESC);
CREATE INDEX follows_following_page ON follows (follower_id, id DESC);

CREATE TABLE tweets (
    id            bigint      PRIMARY KEY,
    author_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content       text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- no foreign key: a reply keeps naming its parent after the parent is deleted
    reply_to_id   bigint,
    retweet_of_id bigint      REFERENCES tweets (id) ON DELETE CASCADE,
    like_count    integer     NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    retweet_count integer     NOT NULL DEFAULT 0 CHECK (retweet_count >= 0)
);
CREATE INDEX tweets_by_author ON tweets (author_id, id DESC);
CREATE UNIQUE INDEX tweets_one_retweet_each
    ON tweets (author_id, retweet_of_id) WHERE retweet_of_id IS NOT NULL;
CREATE INDEX tweets_retweets_of ON tweets (retweet_of_id)
    WHERE retweet_of_id IS NOT NULL;

CREATE TABLE likes (
    tweet_id   bigint      NOT NULL REFERENCES tweets (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tweet_id, user_id)
);
CREATE INDEX likes_by_user ON likes (user_id, tweet_id);

CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Durable copy of the Redis denylist (Redis is a cache and may be flushed).
CREATE TABLE revocations (
    kind       text        NOT NULL,
    value      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, value)
);

CREATE TABLE idempotency_keys (
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    tweet_id     bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Transactional outbox: jobs committed with the data they describe, relayed
-- to RabbitMQ by the workers (survives a broker outage or a crash after commit).
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    message_id   uuid        NOT NULL UNIQUE,
    queue_name   text        NOT NULL,
    actor_name   text        NOT NULL,
    args         jsonb       NOT NULL,
    options      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (available_at, id);

CREATE FUNCTION follows_counters() RETURNS trigger AS $$
DECLARE
    d integer := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    r follows := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
BEGIN
    -- lower id first: two crossing follows lock rows in the same order
    IF r.follower_id < r.followee_id THEN
        UPDATE users SET following_count = following_count + d WHERE id = r.follower_id;
        UPDATE users SET follower_count = follower_count + d WHERE id = r.followee_id;
    ELSE
        UPDATE users SET follower_count = follower_count + d WHERE id = r.followee_id;
        UPDATE users SET following_count = following_count + d WHERE id = r.follower_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER follows_counters AFTER INSERT OR DELETE ON follows
    FOR EACH ROW EXECUTE FUNCTION follows_counters();

CREATE FUNCTION tweets_counters() RETURNS trigger AS $$
DECLARE
    d integer := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    r tweets := CASE WHEN TG_OP = 'INSERT' THEN NEW ELSE OLD END;
BEGIN
    UPDATE users SET tweet_count = tweet_count + d WHERE id = r.author_id;
    IF r.retweet_of_id IS NOT NULL THEN
        UPDATE tweets SET retweet_count = retweet_count + d WHERE id = r.retweet_of_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER tweets_counters AFTER INSERT OR DELETE ON tweets
    FOR EACH ROW EXECUTE FUNCTION tweets_counters();

CREATE FUNCTION likes_counters() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE tweets SET like_count = like_count + 1 WHERE id = NEW.tweet_id;
    ELSE
        UPDATE tweets SET like_count = like_count - 1 WHERE id = OLD.tweet_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER likes_counters AFTER INSERT OR DELETE ON likes
    FOR EACH ROW EXECUTE FUNCTION likes_counters();

-- Wake the outbox relay as soon as a job commits (it also polls).
CREATE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
"""


def up(db, migrator):
    db.execute_sql(SCHEMA)
