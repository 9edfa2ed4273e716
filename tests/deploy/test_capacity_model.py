"""The capacity model (bench/capacity.py) on a small made-up curves document:
its arithmetic and that the chart values it prints exist in the chart."""

from __future__ import annotations

import re

import pytest
import yaml

from bench import capacity
from core.settings import PROJECT_ROOT

TIERS = ("api", "worker", "postgres", "redis", "rabbitmq")


def _cpu(api, redis=0.0, postgres=0.0, worker=0.0):
    return {
        "api": api,
        "worker": worker,
        "postgres": postgres,
        "redis": redis,
        "rabbitmq": 0.0,
    }


def _doc() -> dict:
    return {
        "command": "python -m bench.curves",
        "curves": {
            "home_vs_pulled": {
                "points": [
                    {"x": 0, "cpu_us": _cpu(1000, redis=100)},
                    {"x": 10, "cpu_us": _cpu(2000, redis=300)},
                ]
            },
            "home_depth": {"points": [{"x": 1, "cpu_us": _cpu(1500, postgres=900)}]},
            "create_vs_followers": {
                "points": [
                    {"x": 10, "cpu_us": _cpu(2000, postgres=800)},
                    {"x": 1000, "cpu_us": _cpu(2000, postgres=800)},
                ]
            },
            "fanout_vs_followers": {
                "points": [
                    {
                        "x": 10,
                        "active_followers": 10,
                        "cpu_us": _cpu(0, redis=100, worker=1000),
                        "lag_s": {"p50": 0.01},
                    },
                    {
                        "x": 1010,
                        "active_followers": 1010,
                        "cpu_us": _cpu(0, redis=10100, worker=2000),
                        "lag_s": {"p50": 0.1},
                    },
                ]
            },
        },
        "footprint": {
            "users": 100,
            "active_users": 50,
            "active_share": 0.5,
            "inactive_days": 30,
            "timeline_cap": 800,
            "redis_bytes_per_active_user": 1000,
            "redis_bytes_per_user": 500,
            "home_bytes_full": 14000,
            "user_timeline_bytes_mean": 500,
            "cached_tweet_bytes_mean": 300,
            "by_kind": {"home": {"keys": 50, "bytes": 50_000}},
            "postgres": {
                "tweets": {"bytes_per_row": 400},
                "follows": {"bytes_per_row": 100},
            },
        },
        "lag": None,
    }


def test_interpolation_and_fit():
    points = _doc()["curves"]["home_vs_pulled"]["points"]
    assert capacity.interpolate(points, 5)["api"] == pytest.approx(1500)
    assert capacity.interpolate(points, 50)["api"] == 2000  # clamped, not extrapolated
    marginal = capacity.marginal_us(_doc()["curves"]["fanout_vs_followers"]["points"])
    assert marginal["redis"] == pytest.approx(10.0)
    assert marginal["worker"] == pytest.approx(1.0)


def test_plans_scale_with_users():
    doc = _doc()
    costs = capacity.unit_costs(doc)
    small, big = (capacity.plan(dau, doc, costs) for dau in (1_000_000, 10_000_000))
    for tier in TIERS:
        assert big["cores"][tier] == pytest.approx(10 * small["cores"][tier])
    assert big["redis_memory"]["total"] == pytest.approx(
        10 * small["redis_memory"]["total"]
    )
    assert big["api_pods"] >= small["api_pods"] >= 2


def _keys(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{prefix}{key}"
            yield from _keys(value, f"{prefix}{key}.")


def test_document_and_chart_values():
    text = capacity.render(_doc(), "test.json")
    for heading in ("## Assumptions", "## What each scale needs", "## Chart values"):
        assert heading in text
    chart = yaml.safe_load((PROJECT_ROOT / "charts/twitter/values.yaml").read_text())
    known = set(_keys(chart)) | {"workers"}
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        values = yaml.safe_load(block)
        for key in _keys(values):
            if key.startswith("workers"):
                continue  # a list: its entries' keys are documented in values.yaml
            assert key in known, key
