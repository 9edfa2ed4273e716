"""Read metrics the way Prometheus does: render the text, parse it back."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def families(text: str) -> dict:
    """Metric families by name, from exposition text (parsing is the check)."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(text: str, sample: str, **labels) -> float:
    """Sum of the samples named ``sample`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and labels.items() <= s.labels.items():
                total += s.value
    return total


def current(settings, sample: str, **labels) -> float:
    from core import metrics

    body, _ = metrics.render(settings.metrics_dir)
    return value(body.decode(), sample, **labels)
