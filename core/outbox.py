"""The transactional outbox: jobs are rows committed with the data they describe.

Call :func:`enqueue` inside the same ``db.atomic()`` block as the change. The
workers' relay publishes due rows to RabbitMQ in confirmed batches and deletes
them, so a job survives a broker outage or a crash right after the commit. The
row's ``message_id`` becomes the Dramatiq message id, stable across re-sends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from peewee import SQL, fn

from core.models import Outbox, seconds


@dataclass(frozen=True)
class Job:
    """The name and queue of a worker actor (declared in ``workers.actors``)."""

    actor_name: str
    queue_name: str


# Queues: small fan-outs, the chunks of big fan-outs, and timeline maintenance
# (deletes, unfollows, backfills) each get their own, so a celebrity's fan-out
# never delays a delete or a small account's tweet.
FANOUT_QUEUE = "fanout"
FANOUT_BULK_QUEUE = "fanout_bulk"
TIMELINE_QUEUE = "timeline"
QUEUES = (FANOUT_QUEUE, FANOUT_BULK_QUEUE, TIMELINE_QUEUE)

FANOUT_TWEET = Job("fanout_tweet", FANOUT_QUEUE)
# What the relay sends for several FANOUT_TWEET rows of one batch: one message
# with a list of [tweet_id, author_id] (never written to the outbox itself).
FANOUT_TWEETS = Job("fanout_tweets", FANOUT_QUEUE)
FANOUT_CHUNK = Job("fanout_chunk", FANOUT_BULK_QUEUE)
REMOVE_TWEETS = Job("remove_tweets", TIMELINE_QUEUE)
BACKFILL_FOLLOW = Job("backfill_follow", TIMELINE_QUEUE)
REPUSH_AUTHOR = Job("repush_author", TIMELINE_QUEUE)
PURGE_USER = Job("purge_user", TIMELINE_QUEUE)
# A home or user timeline key found missing by a reader: rebuilt from Postgres.
REBUILD_TIMELINE = Job("rebuild_timeline", TIMELINE_QUEUE)
# An author crossed the fan-out threshold: their followers' cached lists of
# pulled authors are dropped (each reloads on its next read).
FORGET_SOCIAL = Job("forget_social", TIMELINE_QUEUE)
# A revocation's Redis write failed: copy the user's entries when Redis is back.
SYNC_DENYLIST = Job("sync_denylist", TIMELINE_QUEUE)

# Writers notify the relay only while it sleeps (migration 0003): they hold
# this advisory lock shared while reading its flag, and a relay going to sleep
# takes it exclusively once, so no job commits unseen between the two.
RELAY_SLEEP_LOCK = 0x6F75_7462


# An INSERT ... SELECT of a prepared statement's $first .. $first+4, typed: a
# caller appends "FROM <cte>" and records the job in the very statement that
# writes the data (one round trip; see :func:`prepared_args`).
def insert_select_prepared(first: int) -> str:
    n = range(first, first + 5)
    return (
        "INSERT INTO outbox (message_id, queue_name, actor_name, args, options)"
        " SELECT ${}::uuid, ${}::text, ${}::text, ${}::jsonb, ${}::jsonb".format(*n)
    )


def prepared_args(params: dict) -> tuple:
    """The values of :func:`insert_select_prepared` from :func:`job_params`."""
    return (
        params["ob_message_id"],
        params["ob_queue"],
        params["ob_actor"],
        params["ob_args"],
        params["ob_options"],
    )


def _options(request_id: str | None) -> dict:
    return {"request_id": request_id} if request_id else {}


def job_params(job: Job, *args, request_id: str | None = None) -> dict:
    """The outbox row of one job, by parameter name (see :func:`prepared_args`)."""
    options = _options(request_id)
    return {
        "ob_message_id": str(uuid.uuid4()),
        "ob_queue": job.queue_name,
        "ob_actor": job.actor_name,
        "ob_args": orjson.dumps(list(args)).decode(),
        "ob_options": orjson.dumps(options).decode(),
    }


def enqueue(job: Job, *args, request_id: str | None = None) -> str:
    """Record a job in the current transaction; returns its message id."""
    message_id = str(uuid.uuid4())
    (
        Outbox.insert(
            message_id=message_id,
            queue_name=job.queue_name,
            actor_name=job.actor_name,
            args=list(args),
            options=_options(request_id),
        )
        .as_rowcount()
        .execute()
    )
    return message_id


def backlog() -> tuple[int, float]:
    """(rows waiting, age in seconds of the oldest) for metrics and tests."""
    age = seconds(fn.now() - fn.min(Outbox.created_at))
    row = (
        Outbox.select(
            fn.count(SQL("*")).alias("waiting"),
            fn.coalesce(age, 0).alias("age"),
        )
        .dicts()
        .get()
    )
    return int(row["waiting"]), float(row["age"])
