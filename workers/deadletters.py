"""Inspect and replay dead-lettered messages (``python -m workers.deadletters``).

Dramatiq moves a message that exhausted its retries to ``<queue>.XQ`` (kept 7
days). ``list`` shows them without consuming; ``replay`` re-enqueues them with
publisher confirms after resetting the retry bookkeeping (otherwise the next
failure would dead-letter them again at once, and AgeLimit could drop them),
then acknowledges the dead copy. Replaying is safe: every actor is idempotent.
"""

from __future__ import annotations

import argparse
import sys
import time

import dramatiq
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from core.outbox import QUEUES

RESET_OPTIONS = (
    "retries",
    "traceback",
    "eta",
    "requeue_timestamp",
    "dead_letter_reason",
)


def _channel(broker: RabbitmqBroker):
    if not isinstance(broker, RabbitmqBroker):
        raise SystemExit("dead-letter tooling needs the RabbitMQ broker")
    return broker.connection.channel()


def peek(broker: RabbitmqBroker, queue: str) -> list[Message]:
    """Every dead message of ``queue``, left in place."""
    channel = _channel(broker)
    found = []
    try:
        while True:
            method, _, body = channel.basic_get(f"{queue}.XQ", auto_ack=False)
            if method is None:
                break
            found.append(Message.decode(body))
        return found
    finally:
        channel.close()  # unacked deliveries go back to the queue


def replay(broker: RabbitmqBroker, queue: str, limit: int | None = None) -> int:
    """Re-enqueue dead messages of ``queue``; returns how many."""
    channel = _channel(broker)
    count = 0
    try:
        while limit is None or count < limit:
            method, _, body = channel.basic_get(f"{queue}.XQ", auto_ack=False)
            if method is None:
                break
            dead = Message.decode(body)
            options = {k: v for k, v in dead.options.items() if k not in RESET_OPTIONS}
            broker.enqueue(
                dead.copy(options=options, message_timestamp=int(time.time() * 1000))
            )
            channel.basic_ack(method.delivery_tag)
            count += 1
        return count
    finally:
        channel.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.deadletters")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--queue", action="append", choices=QUEUES)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    from workers import main as worker_main  # sets up the broker and actors

    broker = dramatiq.get_broker()
    assert broker is worker_main.broker
    for queue in args.queue or QUEUES:
        if args.command == "list":
            # the failure itself is in the worker's job log line (message id)
            for message in peek(broker, queue):
                sent = time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(message.message_timestamp / 1000)
                )
                print(
                    f"{queue}\t{message.message_id}\t{sent}"
                    f"\t{message.actor_name}\t{list(message.args)}"
                )
        else:
            print(f"{queue}: replayed {replay(broker, queue, args.limit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
