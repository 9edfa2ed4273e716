"""Metric updates from hot paths, applied in bulk by one background thread.

In multiprocess mode (gunicorn) every prometheus_client update takes one
process-wide lock and writes an mmap file. A timeline read made five of them:
13 % of its CPU in a profile, most of it request threads contending for that
lock (bench/README.md). Here a request thread only appends to a deque, which
is thread-safe without a lock in CPython; once every ``FLUSH_S`` a daemon
thread folds the backlog into one update per series and histogram bucket.

A scrape flushes its own process first (``core.metrics.render``), so what it
reports of other processes is at most ``FLUSH_S`` old.
"""

from __future__ import annotations

import bisect
import collections
import os
import threading
import time

from core.periodic import Periodic

FLUSH_S = 1.0
# Bounded: a flusher that cannot keep up loses the oldest samples, not memory.
BACKLOG = 1_000_000
CHUNK = 256  # events folded between two chances for other threads to run
_OBSERVE, _ADD = 0, 1


class DeferredMetrics:
    def __init__(self, interval_s: float = FLUSH_S):
        self._events: collections.deque = collections.deque(maxlen=BACKLOG)
        self._flushing = threading.Lock()
        self._flusher = Periodic(self.flush, interval_s, "metrics-flush")
        # A forked child (a gunicorn worker) starts empty: the parent flushes
        # what it recorded.
        os.register_at_fork(after_in_child=self._forget)

    # ---------------------------------------------------------- hot path
    def inc(self, metric, labels: tuple = (), amount: float = 1.0) -> None:
        """Add ``amount`` to a counter or gauge (of ``labels``, if labelled)."""
        self._events.append((_ADD, metric, labels, amount))
        self._flusher.ensure_started()

    def observe(self, metric, labels: tuple, value: float) -> None:
        """One histogram observation."""
        self._events.append((_OBSERVE, metric, labels, value))
        self._flusher.ensure_started()

    # ------------------------------------------------------------ flushing
    def flush(self) -> None:
        """Apply everything recorded so far (one flush at a time)."""
        with self._flushing:
            added: dict = {}
            observed: dict = {}
            pending = len(self._events)
            while pending > 0:
                n = min(pending, CHUNK)
                self._fold(n, added, observed)
                pending -= n
                if pending:
                    # A second's backlog is a few ms of Python: in one go it
                    # would hold the GIL that long, and every request of the
                    # process would wait (tail latency). Let them in between.
                    time.sleep(0)
            for (metric, labels), amount in added.items():
                if amount:  # e.g. an in-flight gauge's +1 and -1
                    _series(metric, labels).inc(amount)
            for (metric, labels), (total, buckets, _) in observed.items():
                _observe_many(_series(metric, labels), total, buckets)

    def _fold(self, n: int, added: dict, observed: dict) -> None:
        """Take ``n`` events into the per-series sums ``added``/``observed``."""
        pop = self._events.popleft
        for _ in range(n):
            kind, metric, labels, value = pop()
            key = (metric, labels)
            if kind == _ADD:
                added[key] = added.get(key, 0.0) + value
                continue
            entry = observed.get(key)
            if entry is None:
                bounds = _series(metric, labels)._upper_bounds
                entry = observed[key] = [0.0, [0] * len(bounds), bounds]
            entry[0] += value
            entry[1][bisect.bisect_left(entry[2], value)] += 1

    def _forget(self) -> None:
        self._events.clear()
        self._flushing = threading.Lock()


def _series(metric, labels: tuple):
    return metric.labels(*labels) if labels else metric


def _observe_many(histogram, total: float, buckets: list[int]) -> None:
    """``histogram.observe`` for many values at once: the sum and each
    bucket's count in one update each. prometheus_client has no public call
    for it; tests/observability/test_metrics.py checks the result against
    ``observe`` so an upgrade that changes these attributes fails there."""
    histogram._sum.inc(total)
    for index, count in enumerate(buckets):
        if count:
            histogram._buckets[index].inc(count)


DEFERRED = DeferredMetrics()
