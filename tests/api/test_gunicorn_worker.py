"""The connection board and the deferral rule of the balancing gunicorn worker."""

from __future__ import annotations

import os

import pytest

from api.gunicorn_worker import ConnectionBoard, should_defer


@pytest.mark.parametrize(
    ("held", "fewest_peer", "defer"),
    [
        (4, 0, True),  # busy, and a peer holds nothing: leave it the connection
        (5, 3, True),
        (4, 3, False),  # evenly loaded (no keep-alive at saturation): accept
        (9, 8, False),
        (3, 0, False),  # a free thread here: accept
        (8, None, False),  # no live peer
    ],
)
def test_a_busy_worker_defers_only_to_a_less_busy_peer(held, fewest_peer, defer):
    assert should_defer(held, threads=4, fewest_peer=fewest_peer) is defer


def test_slots_are_handed_out_freed_and_reused():
    board = ConnectionBoard(slots=4)
    first = board.take(set())
    second = board.take({first})
    assert (first, second) == (0, 1)
    board.publish(first, 7)
    board.publish(second, 2)
    assert board.fewest_besides(first) == 2 and board.fewest_besides(second) == 7
    board.free(second)  # a dead worker
    assert board.fewest_besides(first) is None
    assert board.take({first}) == 1
    assert board.take({0, 1, 2, 3}) is None


def test_a_forked_workers_count_is_seen_by_its_peers():
    # workers are forked by the master: the board must be shared memory
    board = ConnectionBoard(slots=2)
    mine, theirs = board.take(set()), board.take({0})
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        board.publish(theirs, 5)
        os._exit(0)
    os.waitpid(child, 0)
    assert board.fewest_besides(mine) == 5
