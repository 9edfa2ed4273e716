"""The API's own counters, to tell which path a load run really exercised.

A home read that falls back to Postgres (floor reached, Redis away, a rebuild)
is a different benchmark: the counters' deltas are recorded with each run and
any fallback is flagged. The read cache's counters tell how many pages Redis
rendered alone and how many took the long path.
"""

from __future__ import annotations

import urllib.request

WATCHED = (
    "timeline_postgres_pages_total",
    "timeline_rebuilds_total",
    "timeline_pull_merges_total",
    "read_cache_pages_total",
    "read_cache_misses_total",
)


def scrape(port: int) -> dict[str, float]:
    """Watched counters summed over their labels (missing ones are 0)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    totals = dict.fromkeys(WATCHED, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals


def delta(before: dict, after: dict) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}
