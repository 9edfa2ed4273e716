"""``python -m bench.curves [--smoke]``: cost curves, lag under sustained load,
and the capacity model built from them (bench/README.md, "Cost curves").

Writes bench/results/curves.json, docs/curves/*.png and docs/capacity.md
(``--smoke``: tiny sizes in seconds, bench/results/curves-smoke.json and
var/bench/curves-smoke/; it checks that the harness works and the JSON is
well-formed, never a speed).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import traceback

import orjson

from bench import (
    capacity,
    costs,
    curveworld,
    footprint,
    infra,
    lag,
    load,
    machine,
    plots,
    report,
    synth,
    world,
)
from bench.phases import log
from core.settings import PROJECT_ROOT

CURVES = ("home_vs_pulled", "home_depth", "create_vs_followers", "fanout_vs_followers")


def _guarded(errors: list, name: str, fn, *args):
    log(f"{name}")
    try:
        return fn(*args)
    except Exception as ex:
        log(f"{name} failed: {type(ex).__name__}: {ex}")
        errors.append(
            {
                "phase": name,
                "error": f"{type(ex).__name__}: {ex}",
                "traceback": traceback.format_exc(limit=8),
            }
        )
        return None


def measure(w: world.World, cohorts: synth.Cohorts, errors: list) -> dict:
    out: dict = {"curves": {}}
    curves = out["curves"]
    for name, fn in (
        ("home_vs_pulled", costs.home_vs_pulled),
        ("home_depth", costs.home_depth),
        ("create_vs_followers", costs.create_vs_followers),
    ):
        result = _guarded(errors, name, fn, w, cohorts, log)
        if result:
            curves[name] = result
    create_us = _mean_cpu(curves.get("create_vs_followers"))
    result = _guarded(
        errors,
        "fanout_vs_followers",
        costs.fanout_vs_followers,
        w,
        cohorts,
        create_us,
        log,
    )
    if result:
        curves["fanout_vs_followers"] = result
    out["footprint"] = _guarded(errors, "footprint", footprint.measure, w, cohorts)
    out["lag"] = _guarded(errors, "sustained load", lag.sustained, w, cohorts, log)
    return out


def _mean_cpu(curve: dict | None) -> dict:
    if not curve:
        return {}
    points = curve["points"]
    return {t: sum(p["cpu_us"][t] for p in points) / len(points) for t in costs.TIERS}


def check(document: dict) -> list[str]:
    """Problems with a curves document (the smoke run's assertions: shape only)."""
    problems = []
    for name in CURVES:
        curve = document.get("curves", {}).get(name)
        if not curve or len(curve.get("points", [])) < 2:
            problems.append(f"curve {name}: fewer than 2 points")
            continue
        for point in curve["points"]:
            cpu = point.get("cpu_us", {})
            if set(cpu) != set(costs.TIERS) or not all(
                isinstance(v, int | float) and math.isfinite(v) and v >= 0
                for v in cpu.values()
            ):
                problems.append(f"curve {name} x={point.get('x')}: bad cpu_us {cpu}")
    fp = document.get("footprint") or {}
    if not fp.get("redis_bytes_per_active_user", 0) > 0:
        problems.append("footprint: no Redis bytes per active user")
    lag_doc = document.get("lag") or {}
    if not lag_doc.get("steps") or "burst" not in lag_doc:
        problems.append("lag: no step or no burst")
    return problems


def run(p: synth.CurveProfile, seed: int, keep: bool) -> tuple[dict, list]:
    started = time.time()
    names = infra.Names(str(os.getpid()))
    stale = infra.remove_stale()
    if stale:
        log(f"removed leftovers of dead runs {stale}")
    errors: list = []
    w = None
    with infra.private_redis(names.workdir / "redis") as private:
        try:
            w, cohorts = curveworld.build(p, seed, names, log)
            w.wrk = load.find_wrk(install=False)
            log(f"load generator: {w.wrk or 'bench.pyload (python)'}")
            world.start_services(w)
            measured = measure(w, cohorts, errors)
            document = {
                "name": p.name,
                "seed": seed,
                "command": _command_line(),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "machine": machine.describe(w.wrk),
                "settings": {
                    **machine.settings(w),
                    "inactive_days": w.settings.inactive_days,
                    "redis_server": "the run's own" if private else "the machine's",
                },
                "profile": {
                    k: v for k, v in p.__dict__.items() if not k.startswith("_")
                },
                "dataset": {
                    "users": len(w.data.user_ids),
                    "follows": sum(len(f) for f in w.data.followees),
                    "tweets": len(w.data.tweets),
                    "inactive_users": len(cohorts.inactive),
                    "build_seconds": w.timings,
                },
                **measured,
            }
        finally:
            if w is not None:
                w.stop()
            if not keep:
                infra.remove(names)
    document["duration_s"] = round(time.time() - started, 1)
    if errors:
        document["errors"] = errors
    if not errors and not keep:
        shutil.rmtree(names.workdir, ignore_errors=True)
    return document, errors


def _command_line() -> str:
    exe = os.path.relpath(sys.executable, PROJECT_ROOT)
    return " ".join([exe, "-m", "bench.curves", *sys.argv[1:]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.curves", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    p = synth.SMOKE if args.smoke else synth.FULL
    document, errors = run(p, args.seed, args.keep)
    path = report.write(p.name, document)
    out_dir = (
        infra.VAR / "curves-smoke" if args.smoke else PROJECT_ROOT / "docs" / "curves"
    )
    written = [path]
    written += plots.render(document, out_dir, log)
    doc_path = (
        out_dir / "capacity.md" if args.smoke else PROJECT_ROOT / "docs/capacity.md"
    )
    written.append(capacity.write(path, doc_path))
    problems = check(orjson.loads(path.read_bytes()))
    problems += [f"phase {e['phase']} failed: {e['error']}" for e in errors]
    print(f"\ncurves run took {document['duration_s']} s; written:")
    for item in written:
        print(f"  {os.path.relpath(item, PROJECT_ROOT)}")
    for problem in problems:
        print(f"curves problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
