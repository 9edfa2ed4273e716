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
    # When two workers take slots and publish their connection counts
    first = board.take(set())
    second = board.take({first})
    assert (first, second) == (0, 1)
    board.publish(first, 7)
    board.publish(second, 2)
    # Then each sees the other's
    assert board.fewest_besides(first) == 2 and board.fewest_besides(second) == 7
    # When one dies, its slot is freed and taken again
    board.free(second)  # a dead worker
    assert board.fewest_besides(first) is None
    assert board.take({first}) == 1
    # Then a full board has no slot to give
    assert board.take({0, 1, 2, 3}) is None


def test_a_forked_workers_count_is_seen_by_its_peers():
    # Given a board shared by forked workers (shared memory)
    board = ConnectionBoard(slots=2)
    mine, theirs = board.take(set()), board.take({0})
    # When a forked child publishes its count
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        board.publish(theirs, 5)
        os._exit(0)
    os.waitpid(child, 0)
    # Then the parent sees it
    assert board.fewest_besides(mine) == 5
