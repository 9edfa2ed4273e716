"""The Redis client factory, and running scripts so that either mode serves.

``REDIS_MODE=single`` gives a ``redis.Redis``; ``cluster`` a ``RedisCluster``
that discovers the nodes from the one ``REDIS_URL`` names, follows MOVED and
ASK redirections and reconnects after a failover. Callers use the commands
both share (single-key commands, pipelines without transactions, EVALSHA on
one key), so the code is the same in both modes: every key of one user
carries the hash tag ``{u<id>}`` (``core.keys``) and no call spans two tags.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import weakref

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from core.settings import Settings

Client = redis.Redis | RedisCluster


def make_redis(settings: Settings) -> Client:
    options = dict(
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        # One quick retry at most: redis-py's default backoff would stall every
        # request for seconds while Redis is down, instead of falling back.
        retry=Retry(NoBackoff(), 1),
    )
    if settings.redis_mode == "cluster":
        # During a failover a slot answers MOVED/CLUSTERDOWN for a few
        # seconds: re-read the slot map and try again, a few times, quickly.
        options["retry"] = Retry(ExponentialBackoff(cap=0.5, base=0.05), 3)
        return Lazy(lambda: Cluster.from_url(settings.redis_dsn, **options))
    return redis.Redis.from_url(settings.redis_dsn, retry_on_timeout=False, **options)


class Cluster(RedisCluster):
    """A RedisCluster whose failures are all ``redis.RedisError``s.

    redis-py raises ``RedisClusterException`` (not a RedisError) for a slot
    that no node covers, as during a failover; callers fall back on
    RedisError (to Postgres, or by retrying a job), so it is translated.
    """

    def execute_command(self, *args, **kwargs):
        with _translated():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def translated(*args, **kwargs):
            with _translated():
                return execute(*args, **kwargs)

        pipe.execute = translated
        return pipe


@contextlib.contextmanager
def _translated():
    try:
        yield
    except RedisClusterException as ex:
        raise redis.ConnectionError(f"redis cluster: {ex}") from ex


class Lazy:
    """An object made on first use, and again after a failed try.

    A ``RedisCluster`` asks its nodes for the slot map as it is made, so
    making it at start-up would keep a process from starting while the
    cluster is away; until it answers, every call fails as Redis calls do
    (``redis.ConnectionError``) and callers fall back as they always do.
    """

    def __init__(self, factory):
        self._factory = factory
        self._made = None
        self._lock = threading.Lock()

    def __getattr__(self, name):
        made = self._made
        if made is None:
            with self._lock:
                if self._made is None:
                    with _translated():
                        self._made = self._factory()
                made = self._made
        return getattr(made, name)


# Why: docs/design.md#on-a-redis-cluster
class Script:
    """A Lua script on one user's keys, run alone or queued in a pipeline."""

    def __init__(self, client: Client, source: str):
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys, *args):
        """Run on ``keys`` (a key, or a list of keys sharing one hash tag)."""
        return execute(self.client, [(self, keys, args)])[0]

    def queue(self, pipe, keys, *args) -> None:
        if isinstance(keys, str | bytes):
            keys = (keys,)
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def load(self) -> None:
        self.client.script_load(self.source)


class NotReplicated(redis.RedisError):
    """Fewer replicas than asked for acknowledged the writes (Redis WAIT)."""


def execute(client: Client, calls, wait: tuple[int, int] = (0, 0)) -> list:
    """Run ``(script, keys, args)`` calls in one :func:`pipeline` (one per
    node in cluster mode); replies in order. ``wait``: (replicas, timeout ms)
    that each node's writes must reach, else NotReplicated."""
    for attempt in range(2):
        pipe = pipeline(client)
        for script, keys, args in calls:
            script.queue(pipe, keys, *args)
        replies, replicated = _run_waiting(pipe, wait)
        failed = [r for r in replies if isinstance(r, Exception)]
        if not failed:
            if not replicated:
                raise NotReplicated(f"no replica had the writes within {wait[1]} ms")
            return replies
        if attempt or not any(
            isinstance(r, redis.exceptions.NoScriptError) for r in failed
        ):
            raise failed[0]
        _load(calls)
    raise AssertionError("unreachable")


# Why: docs/design.md#on-a-redis-cluster
class NodePipeline:
    """A cluster pipeline sending each node its share on that node's own client.

    Every command names a key first; ``execute`` answers None on a stale slot map.
    """

    def __init__(self, cluster):
        self._cluster = cluster
        self._commands: list[tuple] = []
        self.replicated = True  # with ``wait``: every node's WAIT was answered

    def execute_command(self, *command) -> None:
        self._commands.append(command)

    def execute(self, raise_on_error: bool = True, wait=None) -> list | None:
        """``wait``: (replicas, timeout ms) for a WAIT after each node's share,
        for as many replicas as the slot map lists there (a failed one is not
        listed: a master left alone takes writes as Redis itself would)."""
        self.replicated = True
        if wait and _slots_age(self._cluster) > SLOTS_FRESH_S:
            _reread_slots(self._cluster)  # replicas come and go: wait for today's
        with _translated():
            by_node: dict[str, tuple] = {}
            for index, command in enumerate(self._commands):
                node = self._cluster.get_node_from_key(_first_key(command))
                by_node.setdefault(node.name, (node, []))[1].append(index)
            replies: list = [None] * len(self._commands)
            try:
                for node, indexes in by_node.values():
                    pipe = node.redis_connection.pipeline(transaction=False)
                    for index in indexes:
                        pipe.execute_command(*self._commands[index])
                    wanted = self._replicas(indexes[0], wait[0]) if wait else 0
                    if wanted:
                        pipe.execute_command("WAIT", wanted, wait[1])
                    answered = pipe.execute(raise_on_error=False)
                    if wanted and not _acknowledged(answered.pop(), wanted):
                        self.replicated = False
                    for index, reply in zip(indexes, answered, strict=True):
                        replies[index] = reply
            except redis.ConnectionError:
                _reread_slots(self._cluster)
                raise
        if not self.replicated:  # a replica that died leaves the slot map
            _reread_slots(self._cluster)
        if any(isinstance(r, _REDIRECTED) for r in replies):
            _reread_slots(self._cluster)
            return None
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies

    def _replicas(self, index: int, most: int) -> int:
        """Replicas to wait for on the node of command ``index``'s key."""
        slot = self._cluster.keyslot(_first_key(self._commands[index]))
        listed = self._cluster.nodes_manager.slots_cache.get(slot) or [None]
        return min(most, len(listed) - 1)

    def replay(self, raise_on_error: bool = True) -> list:
        """The same commands through redis-py's ClusterPipeline."""
        pipe = self._cluster.pipeline(transaction=False)
        for command in self._commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=raise_on_error)


def pipeline(client):
    """A pipeline for commands that each name a key first: redis-py's on a
    single Redis, a :class:`NodePipeline` on a cluster."""
    if hasattr(client, "get_node_from_key"):
        return NodePipeline(client)
    return client.pipeline(transaction=False)


def run(pipe, raise_on_error: bool = True) -> list:
    """Execute a :func:`pipeline`, through ClusterPipeline if the slot map
    was stale."""
    replies = pipe.execute(raise_on_error=raise_on_error)
    if replies is None:
        return pipe.replay(raise_on_error=raise_on_error)
    return replies


def _run_waiting(pipe, wait: tuple[int, int]) -> tuple[list, bool]:
    """(replies, whether the replicas asked for had the writes) of a pipeline
    that ends, on each node, with WAIT when ``wait`` asks for replicas."""
    replicas, timeout_ms = wait
    if not replicas:
        return run(pipe, raise_on_error=False), True
    if isinstance(pipe, NodePipeline):
        replies = pipe.execute(raise_on_error=False, wait=wait)
        if replies is None:  # stale slot map: redone, but WAIT cannot follow
            return pipe.replay(raise_on_error=False), False
        return replies, pipe.replicated
    pipe.execute_command("WAIT", replicas, timeout_ms)
    replies = run(pipe, raise_on_error=False)
    return replies, _acknowledged(replies.pop(), replicas)


def _acknowledged(wait_reply, wanted: int) -> bool:
    """Whether a WAIT's reply counts ``wanted`` replicas (an error counts none)."""
    return isinstance(wait_reply, int) and wait_reply >= wanted


def _first_key(command: tuple):
    name = command[0].upper() if isinstance(command[0], str) else command[0]
    if name in ("EVALSHA", "EVAL", b"EVALSHA", b"EVAL"):
        return command[3]
    return command[1]


_REDIRECTED = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


SLOTS_FRESH_S = 10.0  # writes that wait for replicas re-read an older slot map
# when each cluster client last re-read its slot map; kept here, not on redis-py's
# objects, and gone with the client
_SLOTS_READ_AT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _reread_slots(cluster) -> None:
    # if the cluster does not answer yet, the next call tries again
    with contextlib.suppress(redis.RedisError, RedisClusterException):
        cluster.nodes_manager.initialize()
        _SLOTS_READ_AT[cluster] = time.monotonic()


def _slots_age(cluster) -> float:
    """Seconds since this process last re-read the slot map (or since it began)."""
    read_at = _SLOTS_READ_AT.setdefault(cluster, time.monotonic())
    return time.monotonic() - read_at


def _load(calls) -> None:
    for script in {id(s): s for s, _, _ in calls}.values():
        script.load()


class Gets:
    """GETs of many keys (of any users) queued in a pipeline: one MGET on a
    single Redis; on a cluster one MGET per hash tag (the keys of one user
    share a slot), which its pipeline sends each node in one round trip."""

    def __init__(self, pipe, keys: list):
        self.keys = keys
        if isinstance(pipe, ClusterPipeline | NodePipeline):
            groups: dict[str, list[int]] = {}
            for index, key in enumerate(keys):
                groups.setdefault(hash_tag(key), []).append(index)
            self._groups = list(groups.values())
        else:
            self._groups = [list(range(len(keys)))] if keys else []
        for group in self._groups:
            pipe.execute_command("MGET", *(keys[i] for i in group))
        self.size = len(self._groups)

    def values(self, replies: list, start: int) -> list:
        """The values, in the keys' order, from the pipeline's replies."""
        out: list = [None] * len(self.keys)
        for group, reply in zip(self._groups, replies[start:], strict=False):
            for index, value in zip(group, reply, strict=True):
                out[index] = value
        return out


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: the first ``{...}`` that is
    not empty, else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key
