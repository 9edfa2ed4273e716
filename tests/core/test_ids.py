"""Ids are 64-bit, time-ordered and unique across processes."""

from __future__ import annotations

import multiprocessing
import time

from core import ids
from core.redis_client import make_redis


def _mint(args) -> list[int]:
    settings, count = args
    lease = ids.NodeLease(make_redis(settings), settings.redis_prefix)
    generator = ids.IdGenerator(lease)
    return [generator.next_id() for _ in range(count)]


def test_ids_from_many_processes_never_collide(settings):
    # When four processes mint 20,000 ids each
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        batches = pool.map(_mint, [(settings, 20_000)] * 4)
    # Then all are distinct, positive bigints, ascending per process
    every = [i for batch in batches for i in batch]
    assert len(set(every)) == len(every)
    assert all(0 < i < 2**63 for i in every)
    for batch in batches:
        assert batch == sorted(batch)


def test_ids_follow_time():
    # When two ids are minted 10 ms apart
    generator = ids.IdGenerator(3)
    first = generator.next_id()
    time.sleep(0.01)
    second = generator.next_id()
    # Then they ascend and carry the time they were minted at
    assert second > first
    assert abs(ids.timestamp_of(second) - time.time()) < 1
    assert ids.id_at(time.time() + 1) > second


def test_a_clock_that_steps_back_never_reuses_ids():
    # Given an id minted at some time
    now = [1_900_000_000.0]
    generator = ids.IdGenerator(1, clock=lambda: now[0])
    a = generator.next_id()
    # When the clock steps back 5 s
    now[0] -= 5
    b = generator.next_id()
    # Then the next id is still larger
    assert b > a


def test_more_than_4096_ids_in_one_millisecond_wait_for_the_next():
    # Given a clock frozen in one millisecond until the generator waits
    frozen = 1_900_000_000.0004  # mid-millisecond: float rounding is harmless
    calls = []

    def clock():
        calls.append(1)
        return frozen if len(calls) <= ids.MAX_SEQUENCE + 2 else frozen + 0.001

    generator = ids.IdGenerator(5, clock=clock)
    # When 4,097 ids are asked for
    minted = [generator.next_id() for _ in range(ids.MAX_SEQUENCE + 2)]
    # Then they are all distinct and ascending: the first 4,096 in the frozen
    # millisecond, the last one in the next (the generator waited for it)
    assert minted == sorted(set(minted))
    stamps = [ids.timestamp_of(i) for i in minted]
    assert len(set(stamps[:-1])) == 1
    assert stamps[-1] > stamps[0]


def test_two_processes_never_lease_the_same_node_id(settings, monkeypatch):
    # Given two processes that would try the node ids in the same order
    monkeypatch.setattr(ids.random, "shuffle", lambda candidates: None)
    prefix = f"{settings.redis_prefix}lease-test:"
    # When each leases one (their own clients, as two processes would have)
    first = ids.NodeLease(make_redis(settings), prefix)
    second = ids.NodeLease(make_redis(settings), prefix)
    # Then they hold different ones
    assert first.node_id != second.node_id
