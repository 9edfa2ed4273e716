"""TimelineStore's Lua against a plain model of the rules, byte layout included.

The fan-out path has several branches (in place at the head, in place a few
entries down, rewrite when no slot is free, general merge past the window or on
a placeholder); random pushes -- mostly newer ids, some a little out of order,
redeliveries, ids below or at the floor, multi-entry pushes, removals,
placeholders and rebuilds, missing keys -- go through all of them, to many keys
per call, and every key must equal the model after every step.
"""

from __future__ import annotations

import random
import struct
import uuid

import pytest

from core.keys import Keys
from core.redis_client import NotReplicated, Script
from core.timeline_store import (
    ENTRY,
    HEADER,
    PLACEHOLDER_FLOOR,
    PUSH_SOURCE,
    TimelineStore,
    decode,
    encode,
    pack,
)

BASE = 1 << 62


def author_of(tweet_id: int) -> int:
    return tweet_id % 997 + 1


class Key:
    """One timeline key as the rules define it (None: the key is missing)."""

    def __init__(self, cap: int, slack: int):
        self.cap, self.slack, self.limit = cap, slack, cap + slack
        self.floor: int | None = None
        self.ids: list[int] = []

    def rebuild(self, newest_first: list[int]) -> None:
        entries = newest_first[: self.cap]
        self.floor = entries[-1] if len(newest_first) > self.cap else 0
        self.ids = entries if len(newest_first) > self.cap else newest_first

    def place_holder(self) -> None:
        if self.floor is None:
            self.floor, self.ids = PLACEHOLDER_FLOOR, []

    def push(self, new: list[int]) -> int:
        """Up to ``slack`` entries all newer than the newest, or more: merged
        (trimmed once); otherwise one by one, oldest first."""
        newer = bool(self.ids) and min(new) > self.ids[0]
        if len(new) <= self.slack and not newer:
            for tweet_id in sorted(new):
                self.merge([tweet_id])
            return int(self.floor is not None)
        return self.merge(new)

    def merge(self, new: list[int]) -> int:
        if self.floor is None:
            return 0
        keep_all = self.floor == PLACEHOLDER_FLOOR
        merged = set(self.ids) | {i for i in new if keep_all or i >= self.floor}
        self.ids = sorted(merged, reverse=True)
        if len(self.ids) > self.limit:
            self.ids = self.ids[: self.cap]
            self.floor = self.ids[-1]
        return 1

    def remove(self, gone: set[int]) -> None:
        if self.floor is not None:
            self.ids = [i for i in self.ids if i not in gone]


def check(store: TimelineStore, key: str, model: Key) -> None:
    raw = store.redis.get(key)
    if model.floor is None:
        assert raw is None
        return
    floor, zero, free = struct.unpack_from(">QII", raw)
    assert zero == 0
    assert floor == model.floor
    assert 0 <= free <= store.TRIM_SLACK
    assert raw[HEADER : HEADER + free * ENTRY] == bytes(free * ENTRY)
    body = raw[HEADER + free * ENTRY :]
    assert len(body) % ENTRY == 0
    entries = [struct.unpack_from(">QQ", body, at) for at in range(0, len(body), 16)]
    assert [i for i, _ in entries] == model.ids
    assert all(a == author_of(i) for i, a in entries)
    # a key never holds more than cap + slack entries and free slots
    assert len(entries) + free <= store.cap + store.TRIM_SLACK


def newest_first(ids) -> list[tuple[int, int]]:
    return [(i, author_of(i)) for i in sorted(ids, reverse=True)]


@pytest.mark.parametrize(
    ("cap", "batch", "steps", "seed"),
    [(12, 128, 700, 1), (12, 2, 400, 2), (3, 3, 400, 3), (800, 128, 300, 4)],
)
def test_pushes_match_the_model_byte_for_byte(deps, clean, cap, batch, steps, seed):
    rng = random.Random(seed)
    store = TimelineStore(deps.redis, Keys(deps.settings.redis_prefix), cap, 60)
    store.PUSH_BATCH = batch
    keys = [store.home_key(7000 + k) for k in range(9)]
    models = {key: Key(cap, store.TRIM_SLACK) for key in keys}
    history: list[int] = []
    top = BASE

    def fresh() -> int:
        nonlocal top
        top += rng.randint(1, 3)
        history.append(top)
        return top

    # Given keys of every shape (full, short, empty, missing)
    for key in keys[:6]:  # some full, some short, some empty; three missing
        ids = [fresh() for _ in range(rng.choice([0, 2, cap - 1, cap + 3, 2 * cap]))]
        store.rebuild(key, newest_first(ids))
        models[key].rebuild(sorted(ids, reverse=True))
    # When random pushes, removals, rebuilds and deletes run
    for _ in range(steps):
        roll = rng.random()
        chosen = rng.sample(keys, rng.randint(1, len(keys)))
        if roll < 0.55:  # the fan-out: a new tweet, sometimes a little late
            new = [fresh()]
            if rng.random() < 0.3 and len(history) > 5:
                new = [history[-rng.randint(2, min(len(history), 12))]]
        elif roll < 0.65:  # a redelivery, or a tweet far below the head
            new = [rng.choice(history)] if history else [fresh()]
        elif roll < 0.72:  # exactly at a key's floor, or just below it
            floor = models[chosen[0]].floor
            if floor in (None, 0, PLACEHOLDER_FLOOR):
                continue
            new = [floor - rng.randint(0, 1)]
        elif roll < 0.76:  # a follow's backfill: several at once
            new = rng.sample(history, min(len(history), rng.randint(2, 40)))
        elif roll < 0.8:  # a burst by one author, pushed together
            new = [fresh() for _ in range(rng.randint(2, store.TRIM_SLACK))]
        elif roll < 0.87:
            gone = set(rng.sample(history, min(len(history), 3)))
            store.remove_ids(chosen, sorted(gone))
            for key in chosen:
                models[key].remove(gone)
            continue
        elif roll < 0.93:  # a read finds the key missing: placeholder, rebuild
            key = chosen[0]
            store.delete([key])
            models[key].floor = None
            store.place_holder(key)
            models[key].place_holder()
            late = [fresh()]
            store.push([key], newest_first(late))
            models[key].push(late)
            snapshot = sorted(history[-rng.randint(0, 2 * cap) :], reverse=True)
            store.rebuild(key, newest_first(snapshot[: cap + 1]))
            models[key].floor = None  # the Lua merges the snapshot in
            expect = Key(cap, store.TRIM_SLACK)
            expect.rebuild(snapshot[: cap + 1])
            expect.ids = sorted(
                set(expect.ids) | {i for i in late if i >= expect.floor}, reverse=True
            )
            models[key] = expect
            check(store, key, expect)
            continue
        else:
            store.delete([chosen[0]])
            models[chosen[0]].floor = None
            continue
        # Then after each step every key equals its model
        written = store.push(chosen, newest_first(set(new)))
        assert written == sum(models[key].push(new) for key in chosen)
        for key in keys:
            check(store, key, models[key])


def test_old_keys_with_more_free_slots_than_slack_are_still_merged(deps, clean):
    # Given a key written with another cap's slack
    store = TimelineStore(deps.redis, Keys(deps.settings.redis_prefix), 12, 60)
    key = store.home_key(1)
    ids = [BASE + 10 * k for k in range(12, 0, -1)]
    deps.redis.set(key, encode(0, pack(newest_first(ids)), free=40))
    # When entries are pushed at its head and inside it
    store.push([key], [(BASE + 1000, 5)])
    store.push([key], [(BASE + 55, 5)])
    # Then the general merge took them both
    timeline = store.read([key])[0]
    want = sorted([*ids, BASE + 1000, BASE + 55], reverse=True)
    assert [e[0] for e in timeline.entries()] == want[: len(want)]


def test_pipelined_pushes_reload_a_missing_script_and_take_any_key(deps, clean):
    # Given many script calls in one pipeline, a script Redis has not seen
    # (as after a restart, or on a promoted replica), and one key missing
    store = TimelineStore(deps.redis, Keys(deps.settings.redis_prefix), 12, 60)
    store.PIPELINE_KEYS = 3
    keys = [store.home_key(k) for k in range(10)] + [store.home_key("é")]
    for key in keys[1:]:
        store.rebuild(key, [(BASE, 1)])
    store.push_script = Script(deps.redis, PUSH_SOURCE + f"\n-- {uuid.uuid4()}")
    # When the pushes run (and again: a redelivery)
    assert store.push(keys, [(BASE + 1, 2)]) == len(keys) - 1
    assert store.push(keys, [(BASE + 1, 2)]) == len(keys) - 1  # redelivered
    # Then the script was loaded, every existing key got the entry once
    assert store.redis.exists(keys[0]) == 0
    for timeline in store.read(keys[1:]):
        assert list(timeline.entries()) == [(BASE + 1, 2), (BASE, 1)]


def test_a_push_waits_for_a_replica_and_fails_when_none_answers(deps, clean):
    # Given timelines on every node, written by a store that waits for a replica
    keys = [Keys(deps.settings.redis_prefix).home(k) for k in range(12)]
    store = TimelineStore(
        deps.redis, Keys(deps.settings.redis_prefix), 12, 60, wait=(1, 50)
    )
    for key in keys:
        store.rebuild(key, [(BASE, 1)])
    both = [(BASE + 1, 2), (BASE, 1)]
    if deps.settings.redis_mode == "cluster":
        # When each master's replica acknowledges the push
        assert store.push(keys, [(BASE + 1, 2)]) == len(keys)
        # Then every replica holds it as the push returns
        for key in keys:
            replica = deps.redis.get_node_from_key(key, replica=True)
            pipe = replica.redis_connection.pipeline(transaction=False)
            raw = pipe.execute_command("READONLY").get(key).execute()[1]
            assert list(decode(raw).entries()) == both
        return
    # When the single Redis has no replica to acknowledge it
    with pytest.raises(NotReplicated):
        store.push(keys, [(BASE + 1, 2)])
    # Then the job's retry (here without the wait) finds the work done
    store.wait = (0, 0)
    assert store.push(keys, [(BASE + 1, 2)]) == len(keys)
    for timeline in store.read(keys):
        assert list(timeline.entries()) == both


def test_an_empty_push_changes_nothing_and_counts_the_keys(deps, clean):
    store = TimelineStore(deps.redis, Keys(deps.settings.redis_prefix), 12, 60)
    # Given one key that exists and one that does not
    keys = [store.home_key(1), store.home_key(2)]
    store.rebuild(keys[0], [(BASE, 1)])
    before = deps.redis.get(keys[0])
    # When nothing is pushed, the existing key is counted and unchanged
    assert store.push(keys, []) == 1
    assert deps.redis.get(keys[0]) == before


def test_order_is_exact_for_ids_closer_than_a_double_can_tell(deps, clean):
    # Given 200 ids only 1 apart near 2^62, where doubles are 1024 apart
    store: TimelineStore = deps.timelines.store
    key = store.home_key(1)
    store.rebuild(key, [])
    base = 1 << 62
    ids = [base + k for k in range(200)]
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    # When they are pushed one by one in random order
    for tweet_id in shuffled:
        store.push([key], [(tweet_id, 5)])
    # Then the timeline holds the newest `cap` of them, exactly ordered
    got = [e[0] for e in store.read([key])[0].entries()]
    assert got == sorted(ids, reverse=True)[: len(got)]
    assert len(got) >= store.cap
    assert float(ids[0]) == float(ids[1])  # what a float score would have merged


def test_a_full_800_entry_timeline_fits_in_under_20_kb(deps, clean):
    store = TimelineStore(
        deps.redis, Keys(deps.settings.redis_prefix), cap=800, home_ttl_s=60
    )
    # When a key is rebuilt with 801 entries
    key = store.home_key(42)
    base = 1 << 62
    store.rebuild(key, [(base + 1000 * i, 7 + i % 50) for i in range(801)][::-1])
    # Then it holds 800, in under 20 KB
    assert len(store.read([key])[0]) == 800
    used = deps.redis.memory_usage(key)
    assert used < 20_000, used  # Mastodon's sorted-set layout: ~97 KB
    print(f"redis bytes per full 800-entry timeline: {used}")


def test_single_entry_pushes_match_the_reference_model(deps, clean):
    # The fan-out's fast path (binary search + splice) against a plain model
    # of the rules: ids at or above the floor, no duplicates, lazy trim to cap.
    store = TimelineStore(
        deps.redis, Keys(deps.settings.redis_prefix), cap=20, home_ttl_s=60
    )
    for seed in range(3):
        rng = random.Random(seed)
        key = store.home_key(1000 + seed)
        store.rebuild(key, [])
        floor, model = 0, []
        for _ in range(400):
            tweet_id = (1 << 62) + rng.randrange(1 << 10)
            store.push([key], [(tweet_id, 1)])
            if tweet_id >= floor and tweet_id not in model:
                model = sorted([*model, tweet_id], reverse=True)
                if len(model) > store.cap + store.TRIM_SLACK:
                    model = model[: store.cap]
                    floor = model[-1]
        timeline = store.read([key])[0]
        assert timeline.floor == floor
        assert [e[0] for e in timeline.entries()] == model
