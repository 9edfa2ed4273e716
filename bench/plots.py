"""PNG charts of a curves document (matplotlib: the optional ``bench`` extra).

Without matplotlib the charts are skipped with a message; the JSON and the
capacity document do not need them.
"""

from __future__ import annotations

from pathlib import Path

from bench.costs import TIERS

LOG_X = {"fanout_vs_followers", "create_vs_followers", "home_depth"}
LOG_Y = {"fanout_vs_followers"}  # 10 to 100k followers: costs span 4 decades


def _v(value) -> float:
    """None (an undelivered tweet's lag, a missing figure) plots as a gap."""
    return float("nan") if value is None else value


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def render(document: dict, out_dir: Path, log) -> list[Path]:
    plt = _pyplot()
    if plt is None:
        log("charts skipped: matplotlib missing (pip install -e '.[bench]')")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, curve in document.get("curves", {}).items():
        written.append(_curve(plt, name, curve, out_dir / f"{name}.png"))
    if document.get("footprint"):
        written.append(
            _memory(plt, document["footprint"], out_dir / "redis_memory.png")
        )
    if document.get("lag"):
        written.append(_lag(plt, document["lag"], out_dir / "sustained_lag.png"))
    return written


def _curve(plt, name: str, curve: dict, path: Path) -> Path:
    points = curve["points"]
    xs = [p["x"] for p in points]
    fig, (cpu_ax, lat_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for tier in TIERS:
        ys = [p["cpu_us"][tier] for p in points]
        if any(ys):
            if name in LOG_Y:  # a zero (under one 10 ms tick) has no place
                ys = [y or float("nan") for y in ys]
            cpu_ax.plot(xs, ys, marker="o", label=tier)
    if name in LOG_Y:
        cpu_ax.set_yscale("log")
    cpu_ax.set_ylabel("CPU per operation (µs)")
    cpu_ax.legend()
    if "lag_s" in points[0]:
        lat_ax.plot(
            xs, [_v(p["lag_s"]["p50"]) for p in points], marker="o", label="p50"
        )
        lat_ax.plot(
            xs, [_v(p["lag_s"]["max"]) for p in points], marker="o", label="max"
        )
        lat_ax.set_ylabel("lag, commit → last follower's home (s)")
        lat_ax.set_yscale("log")
    else:
        for q in ("p50", "p99"):
            ys = [_v(p["latency_ms"][q]) for p in points]
            lat_ax.plot(xs, ys, marker="o", label=q)
        lat_ax.set_ylabel("latency at light load (ms)")
    lat_ax.legend()
    for ax in (cpu_ax, lat_ax):
        ax.set_xlabel(curve["x_label"])
        if name in LOG_X and min(xs) > 0:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle(curve["op"])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _memory(plt, fp: dict, path: Path) -> Path:
    kinds = sorted(fp["by_kind"].items(), key=lambda kv: -kv[1]["bytes"])
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [k for k, _ in kinds]
    per_active = [v["bytes"] / fp["active_users"] for _, v in kinds]
    per_user = [v["bytes"] / fp["users"] for _, v in kinds]
    at = range(len(labels))
    ax.bar([i - 0.2 for i in at], per_active, width=0.4, label="per active user")
    ax.bar([i + 0.2 for i in at], per_user, width=0.4, label="per user (all)")
    ax.set_xticks(list(at), labels)
    ax.set_ylabel("Redis bytes")
    ax.set_title(
        f"Redis memory by key kind: {fp['redis_bytes_per_active_user']:.0f} B per"
        f" active user, {fp['redis_bytes_per_user']:.0f} B per user"
        f" (active share {fp['active_share']})"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _lag(plt, doc: dict, path: Path) -> Path:
    steps = [s for s in doc["steps"] if "achieved_rate" in s]
    fig, (lag_ax, cpu_ax) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [s["offered_rate"] for s in doc["steps"]]
    lag_ax.plot(
        xs, [_v(s["lag_s"]["p50"]) for s in doc["steps"]], marker="o", label="p50"
    )
    lag_ax.plot(
        xs, [_v(s["lag_s"]["p99"]) for s in doc["steps"]], marker="o", label="p99"
    )
    lag_ax.axhline(doc["limit_s"], color="red", linestyle="--", label="limit")
    lag_ax.set_xlabel("offered posts/s")
    lag_ax.set_ylabel("fan-out lag (s)")
    lag_ax.legend()
    for tier in TIERS:
        ys = [s["cpu_cores_by_tier"][tier] for s in steps]
        if any(ys):
            cpu_ax.plot([s["offered_rate"] for s in steps], ys, marker="o", label=tier)
    cpu_ax.set_xlabel("offered posts/s")
    cpu_ax.set_ylabel("cores")
    cpu_ax.legend()
    for ax in (lag_ax, cpu_ax):
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"sustained posting: {doc['sustained_rate']} posts/s with lag p99 ≤"
        f" {doc['limit_s']} s; 2x burst drained in"
        f" {doc['burst'].get('backlog_drain_s')} s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
