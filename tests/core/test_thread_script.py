"""The read path's Lua calls on per-thread connections (core.thread_script)."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis

from core.thread_script import ThreadScript


def test_loads_the_script_when_redis_does_not_know_it(deps):
    # a script Redis has never seen: the first call meets NOSCRIPT and loads it
    script = ThreadScript(deps.redis, f"return '{uuid.uuid4().hex}' .. ARGV[1]")
    first = script(keys=[], args=["!"])
    assert first.endswith(b"!") and script(keys=[], args=["?"]).endswith(b"?")


def _client_id(script: ThreadScript) -> int:
    """This thread's connection as Redis names it (scripts may not ask)."""
    conn = script._conn._connection()
    conn.send_command("CLIENT", "ID")
    return conn.read_response()


def test_each_thread_gets_its_own_connection_and_the_same_answers(deps):
    script = ThreadScript(deps.redis, "return ARGV[1] + 1")
    ids, errors = [], []

    def call():
        try:
            assert script(keys=[], args=[41]) == 42
            first = _client_id(script)
            assert script(keys=[], args=[1]) == 2
            ids.append((first, _client_id(script)))
        except Exception as ex:  # pragma: no cover - reported below
            errors.append(ex)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(a == b for a, b in ids)  # a thread keeps its connection
    assert len({a for a, _ in ids}) == 4  # and no two threads share one


def test_a_dropped_connection_fails_one_call_then_reconnects(deps):
    script = ThreadScript(deps.redis, "return 7")
    assert script(keys=[], args=[]) == 7
    mine = _client_id(script)
    deps.redis.client_kill_filter(_id=mine)  # only our own connection
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        script(keys=[], args=[])
    assert script(keys=[], args=[]) == 7
    assert _client_id(script) != mine


def test_a_forked_child_does_not_share_its_parents_connection(deps):
    # gunicorn forks its workers: a connection made before would carry two
    # processes' commands and replies interleaved
    script = ThreadScript(deps.redis, "return ARGV[1]")
    assert script(keys=[], args=["parent"]) == b"parent"
    parent = _client_id(script)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            ok = script(keys=[], args=["child"]) == b"child"
            os.write(write, b"%d %d" % (ok, _client_id(script)))
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    ok, child_id = (int(v) for v in os.read(read, 64).split())
    assert ok and child_id != parent
    assert _client_id(script) == parent  # the parent keeps its own


def test_scripts_run_together_once_each_even_when_one_is_unknown(deps, clean):
    # Given a script Redis knows that counts its runs, and one it never saw
    key = f"{deps.settings.redis_prefix}together:{uuid.uuid4().hex}"
    counter = ThreadScript(deps.redis, "return redis.call('INCR', KEYS[1])")
    counter(keys=[key], args=[])
    fresh = ThreadScript(deps.redis, f"return '{uuid.uuid4().hex}' .. ARGV[1]")
    # When both go in one round trip
    counted, echoed = counter.together((counter, [key], []), (fresh, [], ["!"]))
    # Then each ran exactly once (the known one is not repeated when the
    # unknown one is loaded and run again), replies in order
    assert counted == 2 and echoed.endswith(b"!")
    assert int(deps.redis.get(key)) == 2


def test_an_error_reply_is_raised_and_leaves_the_connection_in_step(deps):
    ok = ThreadScript(deps.redis, "return ARGV[1]")
    failing = ThreadScript(deps.redis, "return redis.error_reply('nope')")
    with pytest.raises(redis.ResponseError, match="nope"):
        ok.together((failing, [], []), (ok, [], ["after"]))
    # every reply of the batch was read: the next call gets its own answer
    assert ok(keys=[], args=["next"]) == b"next"


def test_scripts_of_one_client_share_the_threads_connection(deps):
    # one connection per thread and client, not one per script
    first = ThreadScript(deps.redis, "return 1")
    second = ThreadScript(deps.redis, "return 2")
    assert (first(keys=[], args=[]), second(keys=[], args=[])) == (1, 2)
    assert _client_id(first) == _client_id(second)
