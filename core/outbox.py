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

from core import db


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


# An INSERT ... SELECT, so a caller can also append "FROM <cte>" and record
# the job in the very statement that writes the data (one round trip).
INSERT_SELECT = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, args, options)"
    " SELECT %(ob_message_id)s, %(ob_queue)s, %(ob_actor)s, %(ob_args)s,"
    " %(ob_options)s"
)


# The same as a prepared statement's part: $first .. $first+4, typed, so that
# a caller can prepare its whole statement (see :func:`prepared_args`).
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


def job_params(job: Job, *args, request_id: str | None = None) -> dict:
    """Named parameters of INSERT_SELECT for one job."""
    options = {"request_id": request_id} if request_id else {}
    return {
        "ob_message_id": str(uuid.uuid4()),
        "ob_queue": job.queue_name,
        "ob_actor": job.actor_name,
        "ob_args": orjson.dumps(list(args)).decode(),
        "ob_options": orjson.dumps(options).decode(),
    }


def enqueue(job: Job, *args, request_id: str | None = None) -> str:
    """Record a job in the current transaction; returns its message id."""
    params = job_params(job, *args, request_id=request_id)
    db.execute(INSERT_SELECT, params)
    return params["ob_message_id"]


def backlog() -> tuple[int, float]:
    """(rows waiting, age in seconds of the oldest) for metrics and tests."""
    row = db.fetchone(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
        " FROM outbox"
    )
    return int(row[0]), float(row[1])
