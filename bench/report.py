"""Figures: value, the baseline measured in the same run, their ratio, the target."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

RESULTS = Path(__file__).with_name("results")


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    value: float
    baseline: float | None = None
    baseline_label: str = ""
    # "ratio>=", "ratio<=", "value<=" or "" (report only)
    target: str = ""
    target_value: float | None = None
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        subject = self.value if self.target.startswith("value") else self.ratio
        if subject is None:
            return None
        if self.target.endswith(">="):
            return subject >= self.target_value
        return subject <= self.target_value

    def to_json(self) -> dict:
        out = asdict(self)
        out["ratio"] = None if self.ratio is None else float(f"{self.ratio:.6g}")
        out["met"] = self.met
        return out


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(figures: list[Figure]) -> str:
    """The Markdown table printed after a run and kept in bench/README.md."""
    lines = [
        "| figure | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        base = f"{_num(f.baseline)} {f.baseline_label}" if f.baseline else "-"
        target = "report" if not f.target else f"{f.target} {f.target_value:g}"
        met = {None: "-", True: "yes", False: "**no**"}[f.met]
        lines.append(
            f"| {f.label} | {_num(f.value)} {f.unit} | {base} | {_num(f.ratio)} "
            f"| {target} | {met} |"
        )
    return "\n".join(lines)


def notes(figures: list[Figure]) -> str:
    """Lines under the table: the neighbour-robust view of the read figures."""
    lines = []
    for f in figures:
        d = f.details
        if "per_core_ratio" in d:
            lines.append(
                f"{f.label}: {d['per_core']} req per CPU-second vs no-op "
                f"{d['baseline_per_core']} -> ratio {d['per_core_ratio']}"
            )
        if "noop_at_same_rate" in d:
            lat = d["noop_at_same_rate"]["latency_ms"]
            lines.append(
                f"no-op route at the same rate: p50 {lat['p50']} ms, p99 {lat['p99']}"
                f" ms -> p99/p50 {lat['p99'] / lat['p50']:.2f} (context)"
            )
    generator = _max_generator([f.details for f in figures])
    if generator is not None:
        lines.append(f"load generator's own CPU: at most {generator} cores in any run")
    return "\n".join(lines)


def _max_generator(node) -> float | None:
    """The highest ``cpu_cores.generator`` anywhere in the figures' details."""
    found = []
    if isinstance(node, dict):
        cores = node.get("cpu_cores")
        if isinstance(cores, dict) and "generator" in cores:
            found.append(cores["generator"])
        found += [v for v in map(_max_generator, node.values()) if v is not None]
    elif isinstance(node, list):
        found += [v for v in map(_max_generator, node) if v is not None]
    return max(found) if found else None


def write(name: str, document: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path


def check(path: Path, expected_keys: list[str]) -> list[str]:
    """Problems with a results file (empty when well-formed)."""
    problems = []
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as ex:
        return [f"{path}: {ex}"]
    for section in ("machine", "settings", "dataset", "figures", "command"):
        if section not in document:
            problems.append(f"missing section {section!r}")
    figures = {f.get("key"): f for f in document.get("figures", [])}
    for key in expected_keys:
        fig = figures.get(key)
        if fig is None:
            problems.append(f"missing figure {key!r}")
            continue
        value, baseline, ratio = fig.get("value"), fig.get("baseline"), fig.get("ratio")
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            problems.append(f"{key}: value {value!r} is not a positive number")
        if baseline is not None:
            if not isinstance(baseline, int | float) or baseline <= 0:
                problems.append(f"{key}: baseline {baseline!r} is not positive")
            elif ratio is None or abs(ratio - value / baseline) > 1e-3 * abs(ratio):
                problems.append(f"{key}: ratio {ratio!r} != value / baseline")
    return problems
