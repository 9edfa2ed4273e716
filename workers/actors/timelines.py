"""Timeline actors. Names and queues match ``core.outbox`` jobs.

Every actor is idempotent (see core.fanout), retried with backoff on failure,
and dead-lettered after ``max_retries`` for an operator to inspect and replay.
Time limits stay far below RabbitMQ's 30-minute consumer timeout.
"""

from __future__ import annotations

import threading

import dramatiq

from core import fanout, outbox
from workers import deps
from workers.broker import BatchPublisher

RETRY = {"max_retries": 8, "min_backoff": 1_000, "max_backoff": 60_000}
DAY_MS = 24 * 3600 * 1000
# new tweets: first in line, and useless after a day (homes are rebuilt by then)
FANOUT = {"priority": 0, "time_limit": 60_000, "max_age": DAY_MS, **RETRY}


def maintenance(job: outbox.Job) -> dict:
    """Options of a timeline-maintenance actor (deletes, backfills, rebuilds)."""
    return dict(
        actor_name=job.actor_name,
        queue_name=job.queue_name,
        time_limit=60_000,
        **RETRY,
    )


@dramatiq.actor(
    actor_name=outbox.FANOUT_TWEET.actor_name,
    queue_name=outbox.FANOUT_TWEET.queue_name,
    **FANOUT,
)
def fanout_tweet(tweet_id: int, author_id: int) -> None:
    """Push a tweet to followers (or split the work into chunks)."""
    chunks = []

    def send_chunk(tweet_id, author_id, after, upto):
        chunks.append(
            fanout_chunk.message_with_options(
                args=(tweet_id, author_id, after, upto), **_carry_request_id()
            )
        )

    fanout.fanout_tweet(deps.get(), tweet_id, author_id, send_chunk)
    _send_chunks(chunks)


@dramatiq.actor(
    actor_name=outbox.FANOUT_TWEETS.actor_name,
    queue_name=outbox.FANOUT_TWEETS.queue_name,
    **FANOUT,
)
def fanout_tweets(entries: list) -> None:
    """Push a batch of tweets (``[tweet_id, author_id]`` each), as the relay
    combines them: one message, two queries and one Redis round trip for all.
    ``options["request_ids"]``, when present, lines up with ``entries``."""
    message = dramatiq.middleware.CurrentMessage.get_current_message()
    request_ids = (message.options.get("request_ids") if message else None) or []
    by_tweet = {
        int(tweet_id): request_id
        for (tweet_id, _), request_id in zip(entries, request_ids, strict=False)
        if request_id
    }
    chunks = []

    def send_chunk(tweet_id, author_id, after, upto):
        request_id = by_tweet.get(tweet_id)
        chunks.append(
            fanout_chunk.message_with_options(
                args=(tweet_id, author_id, after, upto),
                **({"request_id": request_id} if request_id else {}),
            )
        )

    fanout.fanout_tweets(deps.get(), entries, send_chunk)
    _send_chunks(chunks)


def _send_chunks(chunks: list) -> None:
    if chunks:
        # One broker round trip for all of a big author's chunks (one publisher
        # confirm each cost ~2.5 ms); a failure retries the whole job, whose
        # chunks are idempotent.
        sent = _publisher().publish(chunks)
        if len(sent) < len(chunks):
            raise RuntimeError(f"{len(chunks) - len(sent)} chunks not routed")


_local = threading.local()


def _publisher() -> BatchPublisher:
    """This thread's publisher (pika connections are not thread-safe)."""
    publisher = getattr(_local, "publisher", None)
    if publisher is None:
        publisher = _local.publisher = BatchPublisher(dramatiq.get_broker())
    return publisher


@dramatiq.actor(
    actor_name=outbox.FANOUT_CHUNK.actor_name,
    queue_name=outbox.FANOUT_CHUNK.queue_name,
    priority=10,
    time_limit=60_000,
    max_age=DAY_MS,
    **RETRY,
)
def fanout_chunk(tweet_id: int, author_id: int, after: int, upto: int) -> None:
    """Push a tweet to one slice of a big follower list."""
    fanout.fanout_chunk(deps.get(), tweet_id, author_id, after, upto)


@dramatiq.actor(**maintenance(outbox.REMOVE_TWEETS))
def remove_tweets(entries: list) -> None:
    """Remove deleted tweets and retweets from timelines."""
    fanout.remove_tweets(deps.get(), entries)


@dramatiq.actor(**maintenance(outbox.BACKFILL_FOLLOW))
def backfill_follow(follower_id: int, followee_id: int) -> None:
    """Copy a new followee's recent tweets into the follower's home."""
    fanout.backfill_follow(deps.get(), follower_id, followee_id)


@dramatiq.actor(**maintenance(outbox.REPUSH_AUTHOR))
def repush_author(author_id: int) -> None:
    """Push an author's recent tweets after they fell below the threshold."""
    fanout.repush_author(deps.get(), author_id)


@dramatiq.actor(**maintenance(outbox.PURGE_USER))
def purge_user(user_id: int, follower_ids: list) -> None:
    """Remove a deleted account's entries from its former followers' homes."""
    fanout.purge_user(deps.get(), user_id, follower_ids)


@dramatiq.actor(**maintenance(outbox.REBUILD_TIMELINE))
def rebuild_timeline(kind: str, user_id: int) -> None:
    """Rebuild a timeline key a reader found missing (reads use Postgres meanwhile)."""
    deps.get().timelines.rebuild(kind, user_id)


@dramatiq.actor(**maintenance(outbox.FORGET_SOCIAL))
def forget_social(author_id: int) -> None:
    """An author crossed the threshold: followers reload whom they pull."""
    fanout.forget_social(deps.get(), author_id)


# Until it succeeds, a revoked token may pass once Redis answers again: retry
# quickly, and for longer than any Redis outage the service is meant to ride out.
@dramatiq.actor(
    actor_name=outbox.SYNC_DENYLIST.actor_name,
    queue_name=outbox.SYNC_DENYLIST.queue_name,
    time_limit=60_000,
    max_retries=100,
    min_backoff=100,
    max_backoff=2_000,
)
def sync_denylist(user_id: int) -> None:
    """Copy a user's revocations into Redis after a write to it failed."""
    deps.get().denylist.reload(user_id)


def _carry_request_id() -> dict:
    message = dramatiq.middleware.CurrentMessage.get_current_message()
    request_id = message.options.get("request_id") if message else None
    return {"request_id": request_id} if request_id else {}
