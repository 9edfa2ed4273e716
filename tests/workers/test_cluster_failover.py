"""A Redis Cluster master dies in the middle of a fan-out burst.

The test starts a cluster of its own (3 masters + 3 replicas on ports of its
own, from the machine's redis-server) so that killing a master touches nothing
else. While tweets are posted and homes read, the master holding most of the
followers' homes gets SIGKILL; its replica is promoted. No request may answer
5xx, the API and the worker reconnect by themselves, and once everything has
settled every home equals the oracle, in Redis as through the API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from falcon import testing

from core import container
from core.timeline_store import decode
from tests.factories import user_with_token
from tests.support import REDIS_PREFIX, postgres_home

ROOT = Path(__file__).resolve().parents[2]
FIRST_PORT = int(os.environ.get("TEST_FAILOVER_FIRST_PORT", "7201"))
pytestmark = [pytest.mark.once, pytest.mark.slow]
WAIT_TIMEOUT_MS = 200


@pytest.fixture
def own_cluster():
    script = str(ROOT / "scripts/redis-cluster.sh")
    subprocess.run([script, "stop", str(FIRST_PORT)], check=True, capture_output=True)
    subprocess.run([script, "start", str(FIRST_PORT)], check=True, capture_output=True)
    yield f"redis://127.0.0.1:{FIRST_PORT}/0"
    subprocess.run([script, "stop", str(FIRST_PORT)], check=True, capture_output=True)


@pytest.fixture
def on_cluster(own_cluster, deps, worker, clean):
    """An app and the in-process worker, both on the test's own cluster."""
    from api.app import create_app
    from workers import deps as worker_deps

    settings = deps.settings.replace(
        redis_mode="cluster",
        redis_url=own_cluster,
        redis_prefix=REDIS_PREFIX,
        # a fan-out's WAIT gives up well inside the cluster's node timeout
        # (2 s), while the replica that did not answer is still listed
        redis_wait_timeout_ms=WAIT_TIMEOUT_MS,
    )
    cluster_deps = container.build(settings)
    worker_deps.use(cluster_deps)
    try:
        yield cluster_deps, testing.TestClient(create_app(settings, cluster_deps))
    finally:
        worker_deps.use(deps)


def _replica_port(master: int) -> int:
    info = redis.Redis(port=master, decode_responses=True).info("replication")
    return int(info["slave0"]["port"])


def _master_pid(port: int) -> int:
    info = redis.Redis(port=port).info("server")
    return int(info["process_id"])


def _failed_over(survivor: int, victim: int) -> bool:
    """The survivor sees the victim failed and every slot served again."""
    node = redis.Redis(port=survivor, socket_timeout=1, decode_responses=True)
    try:
        state = node.cluster("info").get("cluster_state")
        nodes = node.execute_command("CLUSTER", "NODES")
    except redis.RedisError:
        return False
    failed = any(
        f":{victim}@" in line and "fail" in line.split()[2]
        for line in nodes.splitlines()
    )
    return state == "ok" and failed


def test_a_master_killed_mid_fanout_loses_and_duplicates_nothing(on_cluster, drain):
    deps, client = on_cluster
    store = deps.timelines.store
    # Given four small authors (pushed), each followed by four readers
    authors = [user_with_token(client) for _ in range(4)]
    readers = [user_with_token(client) for _ in range(8)]
    for n, (_, r_h) in enumerate(readers):
        for author, _ in (authors[n % 4], authors[(n + 1) % 4]):
            follow = client.simulate_post(
                "/user/follow", params={"username": author["username"]}, headers=r_h
            )
            assert follow.status_code < 300, follow.text
        client.simulate_get("/timeline/home", headers=r_h)
    drain()
    # The master holding the most readers' homes is the one to die
    homes = [store.home_key(int(r["id"])) for r, _ in readers]
    ports = Counter(deps.redis.get_node_from_key(k).port for k in homes)
    victim = ports.most_common(1)[0][0]
    survivor = next(p for p in range(FIRST_PORT, FIRST_PORT + 3) if p != victim)

    statuses: list[int] = []
    stop = threading.Event()

    def post_burst():
        for n in range(60):
            _, a_h = authors[n % 4]
            r = client.simulate_post(
                "/tweet/create", json={"tweet_content": f"burst {n}"}, headers=a_h
            )
            statuses.append(r.status_code)
            time.sleep(0.05)

    def read_loop():
        while not stop.is_set():
            for _, r_h in readers[:3]:
                statuses.append(
                    client.simulate_get("/timeline/home", headers=r_h).status_code
                )

    threads = [
        threading.Thread(target=post_burst, daemon=True),
        threading.Thread(target=read_loop, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        # When, a second into the burst, that master is killed
        time.sleep(1.0)
        os.kill(_master_pid(victim), signal.SIGKILL)
        threads[0].join(timeout=120)
        deadline = time.monotonic() + 30
        while not _failed_over(survivor, victim):
            assert time.monotonic() < deadline, "the replica was not promoted"
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    drain(timeout=120)

    # Then no request answered 5xx
    assert statuses and max(statuses) < 500, Counter(statuses)
    # and every home equals the oracle, in Redis (no loss, no duplicate) ...
    for (reader, r_h), key in zip(readers, homes, strict=True):
        expected = postgres_home(int(reader["id"]), limit=100)
        timeline = store.read([key])[0]
        if timeline is not None:  # a missing key is rebuilt on the next read
            stored = [tweet_id for tweet_id, _ in timeline.entries()]
            assert stored == expected, f"home of {reader['username']} in Redis"
        # ... and through the API
        page = client.simulate_get("/timeline/home", params={"limit": 100}, headers=r_h)
        assert page.status_code == 200, page.text
        assert [int(t["id"]) for t in page.json["data"]] == expected


def test_a_fanout_its_replica_missed_is_redone_after_the_failover(on_cluster, drain):
    deps, client = on_cluster
    store = deps.timelines.store
    # Given a reader whose home is kept, following a small author (pushed)
    author, a_h = user_with_token(client)
    reader, r_h = user_with_token(client)
    follow = client.simulate_post(
        "/user/follow", params={"username": author["username"]}, headers=r_h
    )
    assert follow.status_code < 300, follow.text
    client.simulate_get("/timeline/home", headers=r_h)
    drain()
    key = store.home_key(int(reader["id"]))
    master = deps.redis.get_node_from_key(key).port
    replica = _replica_port(master)
    survivor = next(
        p for p in range(FIRST_PORT, FIRST_PORT + 6) if p not in (master, replica)
    )
    master_pid, replica_pid = _master_pid(master), _master_pid(replica)
    # and the home's master's replica frozen, cut off from it: it takes in
    # no writes (a frozen one would still find them in its socket's buffer)
    os.kill(replica_pid, signal.SIGSTOP)
    try:
        redis.Redis(port=master).client_kill_filter(_type="slave")
        # When the author tweets, the fan-out reaches the master only ...
        posted = client.simulate_post(
            "/tweet/create", json={"tweet_content": "one copy"}, headers=a_h
        )
        assert posted.status_code == 201, posted.text
        tweet_id = int(posted.json["id"])
        on_master = redis.Redis(port=master)
        deadline = time.monotonic() + 30
        while tweet_id not in _ids(on_master.get(key)):
            assert time.monotonic() < deadline, "the fan-out never reached the master"
            time.sleep(0.02)
        # ... its WAIT runs out unanswered (the job must not count as done) ...
        time.sleep(2.5 * WAIT_TIMEOUT_MS / 1000)
        # ... and the master dies before its replica has it
        os.kill(master_pid, signal.SIGKILL)
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while not _failed_over(survivor, master):
        assert time.monotonic() < deadline, "the replica was not promoted"
        time.sleep(0.2)
    drain(timeout=120)

    # Then the promoted replica's copy of the home has the tweet (the fan-out
    # was not done until a replica had it), and so has the page
    expected = postgres_home(int(reader["id"]))
    assert expected[0] == tweet_id
    timeline = _settled_read(deps, store, key)
    if timeline is not None:  # a missing key is rebuilt on the next read
        assert [t for t, _ in timeline.entries()] == expected
    page = client.simulate_get("/timeline/home", headers=r_h)
    assert page.status_code == 200, page.text
    assert [int(t["id"]) for t in page.json["data"]] == expected


def _ids(raw) -> list[int]:
    timeline = decode(raw) if raw else None
    return [t for t, _ in timeline.entries()] if timeline else []


def _settled_read(deps, store, key):
    """The key as the cluster serves it once every node knows the new master."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return store.read([key])[0]
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "the cluster did not settle"
            deps.redis.nodes_manager.initialize()  # this client missed the failover
            time.sleep(0.2)
