"""Deferred metric updates report exactly what direct updates would."""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.deferred_metrics import DeferredMetrics

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def _samples(registry: CollectorRegistry, name: str) -> dict:
    """{(sample name minus the metric's, labels): value}, comparable across names."""
    out = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for s in family.samples:
            out[(s.name[len(name) :], tuple(sorted(s.labels.items())))] = s.value
    return out


def _pair(kind, registry, **kwargs):
    return tuple(
        kind(f"deferred_{kind.__name__}_{way}", "test", registry=registry, **kwargs)
        for way in ("direct", "deferred")
    )


def test_deferred_histograms_counters_and_gauges_match_direct_updates():
    registry = CollectorRegistry()
    hist = _pair(Histogram, registry, labelnames=["route"], buckets=BUCKETS)
    count = _pair(Counter, registry, labelnames=["reason"])
    gauge = _pair(Gauge, registry)
    deferred = DeferredMetrics(interval_s=3600)  # only explicit flushes here
    rng = random.Random(5)
    for _ in range(2000):
        # values on bucket bounds too: a bound belongs to its own bucket
        value = rng.choice([*BUCKETS, rng.uniform(0, 2), rng.expovariate(50)])
        route = rng.choice(["/a", "/b/{id}"])
        hist[0].labels(route).observe(value)
        deferred.observe(hist[1], (route,), value)
        reason = rng.choice(["miss", "short"])
        count[0].labels(reason).inc(2)
        deferred.inc(count[1], (reason,), 2)
        step = rng.choice([1, -1])
        gauge[0].inc(step)
        deferred.inc(gauge[1], (), step)
    deferred.flush()
    for direct, late in (hist, count, gauge):
        expected = _samples(registry, direct._name)
        got = _samples(registry, late._name)
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            # sums add the same floats in another order
            assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key


def test_no_update_is_lost_between_threads_and_flushes():
    registry = CollectorRegistry()
    counter = Counter("deferred_threads", "test", registry=registry)
    deferred = DeferredMetrics(interval_s=0.001)  # flushing all the time
    threads = [
        threading.Thread(target=lambda: [deferred.inc(counter) for _ in range(20_000)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deferred.flush()
    assert registry.get_sample_value("deferred_threads_total") == 80_000
