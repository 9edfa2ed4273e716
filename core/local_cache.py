"""Process-local caches of what Redis answers alike for every reader.

Tweet cards (what never changes of a tweet), usernames' ids as guesses checked in
a read's first round trip, and big authors' user timelines for ``PULLED_CACHE_S``.
Every round trip a page saves is CPU of the hardest tier to grow
(bench/README.md, "Process-local caches"). Why: docs/design.md#read-path
"""

from __future__ import annotations

import threading
import time

from cachetools import LRUCache, TTLCache

PULLED_AUTHORS_KEPT = 4096  # a process keeps at most this many big authors' timelines
USERNAMES_KEPT = 65_536


class Shared:
    """A cachetools cache behind a lock (gunicorn's threads of one process
    share it); with no cache, it keeps nothing."""

    def __init__(self, cache=None):
        self._cache = cache
        self._lock = threading.Lock()

    @property
    def on(self) -> bool:
        return self._cache is not None

    def get_many(self, keys) -> dict:
        """The values kept for ``keys``, by key."""
        if self._cache is None:
            return {}
        with self._lock:
            return {k: v for k in keys if (v := self._cache.get(k)) is not None}

    def put_many(self, items: dict) -> None:
        if self._cache is not None and items:
            with self._lock:
                self._cache.update(items)

    def pop_many(self, keys) -> None:
        if self._cache is not None:
            with self._lock:
                for key in keys:
                    self._cache.pop(key, None)


class LocalCache:
    """Tweet cards by tweet id; pulled authors' timelines by author id;
    user ids by username."""

    def __init__(self, cards: int, pulled_s: float, timer=time.monotonic):
        self.cards = Shared(LRUCache(cards) if cards > 0 else None)
        # a guess: each read checks it against the user's own name key
        self.owners = Shared(LRUCache(min(cards, USERNAMES_KEPT)) if cards else None)
        self.pulled = Shared(
            TTLCache(PULLED_AUTHORS_KEPT, pulled_s, timer) if pulled_s > 0 else None
        )
