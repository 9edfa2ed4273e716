"""64-bit, time-ordered, globally unique ids (Snowflake layout).

    | 1 bit 0 | 41 bits ms since 2020-01-01 | 10 bits node | 12 bits sequence |

Ids sort by creation time and fit a signed bigint. The node id makes ids unique
across processes and pods: each process leases one of 1024 node ids in Redis
(``SET NX PX``) and renews it in the background; ``NODE_ID`` pins one instead.
As a last line of defence every id lands in a primary key, so a duplicate can
never be stored silently.
"""

from __future__ import annotations

import os
import random
import threading
import time

EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
NODE_BITS = 10
SEQUENCE_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
LEASE_MS = 60_000
RENEW_EVERY_S = 15.0

# Keep the lease if it is still ours (or vanished, e.g. Redis was flushed).
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class IdGenerator:
    """Thread-safe Snowflake generator for one node id."""

    def __init__(self, node_id, clock=time.time):
        """``node_id``: an int, or an object whose ``node_id`` may change (a lease)."""
        self._node = node_id
        if not 0 <= self.node_id <= MAX_NODE:
            raise ValueError(f"node id must be 0..{MAX_NODE}")
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    @property
    def node_id(self) -> int:
        return self._node if isinstance(self._node, int) else self._node.node_id

    def _now_ms(self) -> int:
        return int(self._clock() * 1000) - EPOCH_MS

    def next_id(self) -> int:
        with self._lock:
            now = self._now_ms()
            if now < self._last_ms:
                # Clock stepped back: never reuse a past timestamp.
                now = self._last_ms
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & MAX_SEQUENCE
                if self._sequence == 0:  # 4096 ids this millisecond: wait for the next
                    while now <= self._last_ms:
                        time.sleep(0.0001)
                        now = self._now_ms()
            else:
                self._sequence = 0
            self._last_ms = now
            return (
                (now << (NODE_BITS + SEQUENCE_BITS))
                | (self.node_id << SEQUENCE_BITS)
                | self._sequence
            )


def id_at(timestamp_s: float) -> int:
    """The smallest id that could be minted at ``timestamp_s`` (for time bounds)."""
    return (int(timestamp_s * 1000) - EPOCH_MS) << (NODE_BITS + SEQUENCE_BITS)


def timestamp_of(id_: int) -> float:
    return ((id_ >> (NODE_BITS + SEQUENCE_BITS)) + EPOCH_MS) / 1000.0


class NodeLease:
    """Holds one node id leased in Redis for as long as the process lives."""

    def __init__(self, redis_client, prefix: str):
        self._redis = redis_client
        self._prefix = prefix
        self._token = f"{os.uname().nodename}:{os.getpid()}:{random.getrandbits(64)}"
        self._renew = redis_client.register_script(_RENEW)
        self.node_id = self._acquire()
        thread = threading.Thread(target=self._keep, name="id-lease", daemon=True)
        thread.start()

    def _key(self, node: int) -> str:
        return f"{self._prefix}idnode:{node}"

    def _acquire(self) -> int:
        candidates = list(range(MAX_NODE + 1))
        random.shuffle(candidates)
        for node in candidates:
            if self._redis.set(self._key(node), self._token, nx=True, px=LEASE_MS):
                return node
        raise RuntimeError("no free id node: more than 1024 live processes")

    def _keep(self) -> None:
        while True:
            time.sleep(RENEW_EVERY_S)
            try:
                if not self._renew(
                    keys=[self._key(self.node_id)], args=[self._token, LEASE_MS]
                ):
                    # Another process holds our node id: move to a free one.
                    self.node_id = self._acquire()
            except Exception:  # Redis briefly away: retry at the next tick
                continue
