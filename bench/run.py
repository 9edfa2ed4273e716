"""One benchmark run: build the world, measure every figure, write the results."""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass

from bench import infra, load, machine, profile, reads, report, world
from bench.config import Profile
from bench.phases import PHASES, log
from bench.report import Figure


@dataclass(frozen=True)
class Options:
    seed: int = 42
    name: str = ""
    keep: bool = False
    use_wrk: bool = True
    profile_server: bool = False
    only: tuple[str, ...] = ()  # phase names; empty: all
    overrides: tuple[tuple[str, str], ...] = ()  # service environment, e.g. WEB_THREADS
    gunicorn: tuple[str, ...] = ()  # extra gunicorn options for API and no-op alike
    variants: tuple = ()  # bench.variants.Variant: API variants (--only variants)


def _guarded(phase, w: world.World, figures=None, errors=None):
    """Run one phase; a failure is recorded and the run goes on to the next."""
    try:
        return phase(w) if figures is None else phase(w, figures)
    except Exception as ex:
        log(f"phase {phase.__name__} failed: {type(ex).__name__}: {ex}")
        errors.append(
            {
                "phase": phase.__name__,
                "error": f"{type(ex).__name__}: {ex}",
                "traceback": traceback.format_exc(limit=8),
            }
        )
        return None


def execute(prof: Profile, options: Options) -> int:
    """The whole run; 0 when every selected figure was measured and written."""
    started = time.time()
    name = options.name or prof.name
    selected = [p for p in PHASES if p in options.only or not options.only]
    if not options.only:
        selected.remove("variants")  # an experiment: only when asked for
    names = infra.Names(str(os.getpid()))
    stale = infra.remove_stale()
    if stale:
        log(f"removed leftovers of dead runs {stale}")
    figures: list[Figure] = []
    errors: list[dict] = []
    w = None
    try:
        w = world.build(prof, options.seed, names, log, dict(options.overrides))
        w.gunicorn_extra = options.gunicorn
        w.variants = list(options.variants)
        if options.use_wrk:
            w.wrk = load.find_wrk(install=prof.name == "full")
        log(f"load generator: {w.wrk or 'bench.pyload (python)'}")
        log("starting gunicorn (API and no-op), dramatiq worker")
        world.start_services(w)
        checked = reads.validate(w)
        for phase in selected:
            _guarded(PHASES[phase][0], w, figures, errors)
        profiled = None
        if options.profile_server:
            profiled = _guarded(profile.profile_phase, w, errors=errors)
        document = {
            "name": name,
            "profile": prof.name,
            "seed": options.seed,
            "phases": selected,
            "overrides": dict(options.overrides),
            "gunicorn_options": list(options.gunicorn),
            "variants": [v.name for v in options.variants],
            "command": machine.command_line(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1),
            "machine": machine.describe(w.wrk),
            "settings": machine.settings(w),
            "dataset": {**machine.dataset(w), "validation": checked},
            "figures": [f.to_json() for f in figures],
        }
        if profiled:
            document["profile"] = profiled
        if errors:
            document["errors"] = errors
    finally:
        if w is not None:
            w.stop()
        if not options.keep:
            infra.remove(names)
    path = report.write(name, document)
    print()
    print(report.table(figures))
    print(report.notes(figures))
    print(
        f"\nwritten {path.relative_to(report.RESULTS.parent.parent)}"
        f" in {document['duration_s']}s"
    )
    problems = report.check(path, [k for p in selected for k in PHASES[p][1]])
    problems += [f"phase {e['phase']} failed: {e['error']}" for e in errors]
    if not problems and not options.keep:
        _keep_logs(names.workdir, infra.VAR / "logs" / name)
        shutil.rmtree(names.workdir, ignore_errors=True)  # all kept on failure
    for problem in problems:
        print(f"results file problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _keep_logs(workdir, target) -> None:
    """The services' logs of the last run of this name, for a look afterwards."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    for log_file in workdir.glob("*.log"):
        shutil.copy2(log_file, target / log_file.name)
