"""Process-local caches of what Redis answers alike for every reader.

Redis runs commands on one thread per node and a round trip costs it far more
than the commands in it, so every round trip a page saves is CPU of the
hardest tier to grow (bench/README.md, "Process-local caches"). Two things are
the same for every reader and safe to keep in the API process:

* a tweet's *card*, what never changes of it (text, time, reply, original):
  with the cards known, a page's retweeted originals are fetched in the same
  round trip as the page. Whether a tweet still exists, and its counts, still
  come from Redis on every read.
* a pulled (big) author's user timeline, for ``PULLED_CACHE_S``: that author's
  new tweets reach their followers' homes that much later (their own
  timelines are never served from here). A deleted one never shows: its
  cached tweet is gone from Redis, which every page checks, and the page that
  finds it gone forgets the timelines it used.
"""

from __future__ import annotations

import threading
import time

from cachetools import LRUCache, TTLCache

PULLED_AUTHORS_KEPT = 4096  # a process keeps at most this many big authors' timelines


class LocalCache:
    """Thread-safe: gunicorn's threads of one process share it."""

    def __init__(self, cards: int, pulled_s: float, timer=time.monotonic):
        self._lock = threading.Lock()
        self._cards = LRUCache(cards) if cards > 0 else None
        self._pulled = (
            TTLCache(PULLED_AUTHORS_KEPT, pulled_s, timer) if pulled_s > 0 else None
        )

    @property
    def keeps_pulled(self) -> bool:
        return self._pulled is not None

    def cards(self, tweet_ids) -> dict:
        """The cards known of ``tweet_ids``, by id."""
        if self._cards is None:
            return {}
        with self._lock:
            return {t: c for t in tweet_ids if (c := self._cards.get(t)) is not None}

    def keep_cards(self, cards: dict) -> None:
        if self._cards is not None and cards:
            with self._lock:
                self._cards.update(cards)

    def pulled(self, authors) -> dict:
        """The cached timelines of ``authors``, by author."""
        if self._pulled is None:
            return {}
        with self._lock:
            return {a: t for a in authors if (t := self._pulled.get(a)) is not None}

    def keep_pulled(self, timelines: dict) -> None:
        if self._pulled is not None and timelines:
            with self._lock:
                self._pulled.update(timelines)

    def forget_pulled(self, authors) -> None:
        if self._pulled is not None:
            with self._lock:
                for author in authors:
                    self._pulled.pop(author, None)
