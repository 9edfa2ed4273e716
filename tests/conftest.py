"""Shared fixtures: real Postgres, Redis and RabbitMQ in names of their own.

Each run gets its own database ``twitter_test_<run>``, Redis key prefix
``twtest:<run>:`` (in database 15) and RabbitMQ vhost ``twitter_test_<run>``, all
removed at the end, so runs never touch a developer's instance or each other.
A missing service fails the run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from falcon import testing

from core.redis_client import make_redis
from tests.embedded_services import start_embedded_if_needed
from tests.support import REDIS_PREFIX, RUN_ID, clear_redis_prefix

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = f"twitter_test_{RUN_ID}"
TEST_VHOST = f"twitter_test_{RUN_ID}"

# REDIS_MODE=cluster runs the suite on the local Redis Cluster that
# scripts/redis-cluster.sh starts (`make test` runs both modes).
REDIS_MODE = os.environ.get("REDIS_MODE", "single")
CLUSTER_URL = os.environ.get("TEST_REDIS_CLUSTER_URL", "redis://127.0.0.1:7101/0")

# Test environment: every process started by the tests inherits it.
TEST_ENV = {
    "APP_ENV": "test",
    "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{TEST_DB}",
    "REDIS_MODE": REDIS_MODE,
    "REDIS_URL": CLUSTER_URL
    if REDIS_MODE == "cluster"
    else "redis://127.0.0.1:6379/15",
    "REDIS_PREFIX": REDIS_PREFIX,
    "BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{TEST_VHOST}",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_KIB": "8",
    "FANOUT_THRESHOLD": "5",
    "TIMELINE_CAP": "30",
    "FANOUT_CHUNK_SIZE": "4",
    "OUTBOX_POLL_S": "0.2",
    "CURSOR_SECRET": "test-cursor-secret-test-cursor-secret",
    "RATE_LIMITS_ENABLED": "false",
    # Big authors' timelines are re-read on every page, so that a test may read
    # right after a write; tests/core/test_local_cache.py turns the cache on.
    "PULLED_CACHE_S": "0",
}


def _prepare_keys(tmp: Path) -> None:
    from core import keyfiles

    private = tmp / "private.pem"
    public = tmp / "public"
    if not private.exists():
        keyfiles.write_keypair(private, public)
    TEST_ENV["JWT_PRIVATE_KEY_PATH"] = str(private)
    TEST_ENV["JWT_PUBLIC_KEYS_PATH"] = str(public)


def _admin_sql(*statements: str) -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    """Vhosts are made with rabbitmqctl (the broker runs on this machine)."""
    if EMBEDDED and EMBEDDED.broker_is_redis:
        return  # Dramatiq's Redis broker stands in: no vhosts
    subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, check=check)


_keys_dir = ROOT / "var" / "test-keys"
_keys_dir.mkdir(parents=True, exist_ok=True)
sys.path.insert(0, str(ROOT))
_prepare_keys(_keys_dir)

# Without the machine's services (and never in CI), run on embedded servers.
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
EMBEDDED = start_embedded_if_needed(TEST_DB)
if EMBEDDED:
    TEST_ENV.update(EMBEDDED.env)
    ADMIN_URL = EMBEDDED.admin_database_url or ADMIN_URL
    atexit.register(EMBEDDED.stop)
os.environ.update(TEST_ENV)


def pytest_sessionstart(session):
    if EMBEDDED:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(EMBEDDED.summary)


def pytest_collection_modifyitems(config, items):
    if REDIS_MODE == "cluster":
        # Tests of one Redis server behind a TCP proxy: a cluster's clients
        # find its nodes by their own addresses (the failover tests cover it).
        # Tests that start their own servers ran in the single-Redis run.
        left_out = {"single_redis", "once"}
        kept = [item for item in items if not left_out & set(item.keywords)]
        config.hook.pytest_deselected(
            items=[item for item in items if left_out & set(item.keywords)]
        )
        items[:] = kept
    if EMBEDDED and EMBEDDED.broker_is_redis:
        skip = pytest.mark.skip(
            reason="needs RabbitMQ: the embedded servers run Dramatiq's Redis broker"
        )
        for item in items:
            if "needs_rabbitmq" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def settings():
    from core.settings import Settings

    return Settings.from_env()


@pytest.fixture(scope="session", autouse=True)
def services(settings):
    """Fresh schema and vhost for the run; fail loudly when a service is down."""
    _admin_sql(
        f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)", f"CREATE DATABASE {TEST_DB}"
    )
    _rabbitmqctl("add_vhost", TEST_VHOST, check=False)
    _rabbitmqctl("set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*")
    client = make_redis(settings)
    client.ping()
    from core.db import database, init_database
    from migrations import runner

    init_database(settings)
    runner.migrate(log=lambda *_: None)
    yield
    database.close_all()
    clear_redis_prefix(client)
    _rabbitmqctl("delete_vhost", TEST_VHOST, check=False)
    _admin_sql(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")


TABLES = (
    "users, follows, tweets, likes, refresh_tokens, revocations, "
    "idempotency_keys, outbox"
)


@pytest.fixture
def clean(settings):
    """Empty tables and this suite's Redis database before a test."""
    import peewee

    from core.db import database

    for attempt in range(3):
        try:
            database.execute_sql(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
            break
        except peewee.OperationalError as ex:
            # The session's worker (its outbox relay) may hold a share lock on
            # one table while TRUNCATE holds another: Postgres aborts one side
            # of the deadlock, and the standard answer is to run it again.
            if "deadlock" not in str(ex) or attempt == 2:
                raise
        finally:
            database.close()
    clear_redis_prefix(make_redis(settings))
    yield


@pytest.fixture(scope="session")
def deps(settings, services):
    from core import container

    return container.build(settings)


@pytest.fixture
def client(deps, clean):
    from api.app import create_app

    return testing.TestClient(create_app(deps.settings, deps))


def flush_broker(broker) -> None:
    """Empty every queue. This thread's RabbitMQ connection idles between the
    tests that use it, and pika sends heartbeats only when called: after a
    minute or more of other tests (the schemathesis run takes that long alone)
    the broker has dropped it, so a lost connection is replaced once."""
    import pika

    try:
        broker.flush_all()
    except pika.exceptions.AMQPError:
        del broker.connection  # dramatiq opens a new one on next use
        broker.flush_all()


class Drainer:
    """Waits until every committed job has been relayed and processed."""

    def __init__(self, worker, broker):
        self.worker = worker
        self.broker = broker

    @contextlib.contextmanager
    def paused(self):
        """No in-process worker or relay while a test runs its own processes."""
        import dramatiq

        self.worker.stop()
        # Messages the stopped worker had prefetched are back in their queues,
        # and a relay may have published a previous test's rows just before
        # the stop: the test's own processes start from empty queues.
        self._wait_detached()
        flush_broker(self.broker)
        try:
            yield
        finally:
            # RabbitMQ drops a killed worker's consumers, and puts back the
            # messages they held unacked, some time after the kill: flushing
            # before that would leave those messages for the next test, and a
            # consumer still attached would take its share of the next test's.
            self._wait_detached()
            flush_broker(self.broker)
            self.worker = dramatiq.Worker(
                self.broker, worker_threads=4, worker_timeout=100
            )
            self.worker.start()

    def _wait_detached(self, timeout: float = 30.0) -> None:
        """Wait until no consumer is attached to any queue (RabbitMQ only):
        the workers stopped or killed are gone, their unacked messages back."""
        import time

        from dramatiq.common import dq_name

        if not hasattr(self.broker, "get_queue_message_counts"):  # Redis broker
            return
        deadline = time.monotonic() + timeout
        channel = self.broker.channel
        while attached := sum(
            channel.queue_declare(name, passive=True).method.consumer_count
            for queue in self.broker.get_declared_queues()
            for name in (queue, dq_name(queue))
        ):
            assert time.monotonic() < deadline, (
                f"{attached} consumers still attached: a stopped worker lives on"
            )
            time.sleep(0.02)

    def _queued(self) -> int:
        """Ready messages in every queue (in-flight ones are the worker's join).

        Messages unacked at any other consumer would count nowhere: paused()
        returns only once its test's workers have let go of theirs."""
        queues = self.broker.get_declared_queues()
        if not hasattr(self.broker, "get_queue_message_counts"):  # Redis broker
            return sum(self.broker.do_qsize(q) for q in queues)
        return sum(
            sum(self.broker.get_queue_message_counts(q)[:2])
            for q in self.broker.get_declared_queues()
        )

    def drain(self, timeout: float = 60.0) -> None:
        import time

        from core import outbox
        from core.db import database

        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while quiet_rounds < 2:
            assert time.monotonic() < deadline, "jobs did not drain in time"
            waiting, _ = outbox.backlog()
            database.close()
            if waiting:
                quiet_rounds = 0
                time.sleep(0.05)
                continue
            if self._queued():
                quiet_rounds = 0
                time.sleep(0.02)
                continue
            self.worker.join()
            quiet_rounds += 1


@pytest.fixture(scope="session")
def worker(deps):
    """A real Dramatiq worker (threads in this process) on the test vhost."""
    import dramatiq

    from workers import deps as worker_deps
    from workers import main

    worker_deps.use(deps)
    flush_broker(main.broker)
    running = dramatiq.Worker(main.broker, worker_threads=4, worker_timeout=100)
    running.start()
    drainer = Drainer(running, main.broker)
    yield drainer
    drainer.worker.stop()  # the one running now (paused() replaces it)


@pytest.fixture
def drain(worker, clean):
    """Call ``drain()`` to wait for quiescence (outbox relayed, queues empty)."""
    flush_broker(worker.broker)
    return worker.drain
