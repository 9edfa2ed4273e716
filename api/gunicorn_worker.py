"""gunicorn's gthread worker, with new connections spread across the workers.

All workers accept from one listening socket. When a client opens many
keep-alive connections at once (a load balancer's upstream pool, a benchmark),
whichever worker is on a CPU accepts them in a tight loop while its peers wait
for a time slice: on two cores, 2 of 6 benchmark rounds put all 16 of wrk's
connections into one worker, which then served them on one core (its GIL)
while the other worker idled. Throughput halved, latency tails grew.

Each worker publishes how many connections it holds on a board in memory shared
by the master's children (``BOARD``; ``api/gunicorn_conf.py`` hands out the
slots). A worker that holds a connection per thread or more, while a peer holds
at least two fewer, waits a moment before accepting, so that the peer takes the
connection. Workers that are evenly loaded never wait: clients opening a
connection per request (no keep-alive) are accepted as by the stock worker.
A first version that paused on its own count alone halved their throughput.
"""

from __future__ import annotations

import mmap
import time

import orjson
from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

ACCEPT_PAUSE_S = 0.002  # a peer's wake-up on a busy machine
SLOTS = 64  # workers of one master at a time (a dead worker's slot is reused)
_FREE = -1


class ConnectionBoard:
    """Open connections per worker slot, in an anonymous shared mapping that
    forked workers inherit. Each worker writes only its own slot."""

    def __init__(self, slots: int = SLOTS):
        self._counts = memoryview(mmap.mmap(-1, 4 * slots)).cast("i")
        for slot in range(slots):
            self._counts[slot] = _FREE

    def take(self, in_use: set[int]) -> int | None:
        """A free slot for a worker about to be forked (in the master)."""
        for slot in range(len(self._counts)):
            if slot not in in_use:
                self._counts[slot] = 0
                return slot
        return None

    def free(self, slot: int) -> None:
        self._counts[slot] = _FREE

    def publish(self, slot: int, connections: int) -> None:
        self._counts[slot] = connections

    def fewest_besides(self, slot: int) -> int | None:
        """The fewest connections any other live worker holds."""
        others = [n for i, n in enumerate(self._counts) if i != slot and n != _FREE]
        return min(others) if others else None


BOARD = ConnectionBoard()


def should_defer(held: int, threads: int, fewest_peer: int | None) -> bool:
    """Leave a new connection to a peer: we are busy and a peer is less so."""
    return fewest_peer is not None and held >= threads and fewest_peer + 2 <= held


_PROBLEM_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    501: "not_implemented",
}


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers (a request line or headers too long, a
    malformed request) as RFC 9457 problems like every other error, instead of
    an HTML page; the message, which quotes the client's bytes, stays out."""
    code = _PROBLEM_CODES.get(status_int, "internal_error")
    body = orjson.dumps(
        {
            "type": f"https://twitter-backend.dev/problems/{code}",
            "title": reason,
            "status": status_int,
            "detail": reason,
            "code": code,
        }
    )
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class BalancedThreadWorker(ThreadWorker):
    board_slot: int | None = None  # set by gunicorn_conf.pre_fork

    def init_process(self):
        # gunicorn writes its errors through this module function; in a worker
        # process only (the master never answers requests).
        util.write_error = write_problem
        super().init_process()

    def accept(self, listener):
        slot = self.board_slot
        # the board is read only when this worker is busy: a free one accepts
        if slot is not None and self.nr_conns >= self.cfg.threads:
            fewest = BOARD.fewest_besides(slot)
            if should_defer(self.nr_conns, self.cfg.threads, fewest):
                time.sleep(ACCEPT_PAUSE_S)
        super().accept(listener)
        self._publish()

    def wait_for_and_dispatch_events(self, timeout):
        self._publish()  # connections closed since the last turn
        super().wait_for_and_dispatch_events(timeout)

    def _publish(self) -> None:
        if self.board_slot is not None:
            BOARD.publish(self.board_slot, self.nr_conns)
