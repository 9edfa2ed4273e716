"""Experiment: home reads of several API variants, interleaved in one run.

``--variant NAME=SPEC`` (repeatable) starts one more API per variant next to
the run's own, on the same data; ``--only variants`` then measures them. SPEC
is a space-separated list of:

* ``@REV``: serve the code of a git revision (``git archive`` into the run's
  folder), e.g. the commit before a hand-written part was replaced; ``@DIR``,
  an existing directory, serves the project copy in it;
* ``NAME=VALUE``: a setting for this variant only, e.g. ``WEB_WORKERS=1``;
* anything else: a gunicorn option, e.g. ``--worker-class=gthread``.

Every round measures the no-op route, then each variant in turn (the order
rotates between rounds), so that the shared machine's drift hits them alike.
A variant's figure is its best home reads/s against the no-op's best, with the
per-CPU-second ratio next to it: the figure to compare between variants.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import load, reads, server
from bench.report import Figure
from bench.world import World
from core.settings import PROJECT_ROOT, Settings

ROUNDS = 4


@dataclass(frozen=True)
class Variant:
    name: str
    rev: str = ""
    env: dict = field(default_factory=dict)
    gunicorn: tuple[str, ...] = ()


def parse(item: str) -> Variant:
    """``NAME=SPEC`` as described above; ValueError when malformed."""
    name, sep, spec = item.partition("=")
    if not sep or not name.isidentifier():
        raise ValueError(f"--variant wants NAME=SPEC, got {item!r}")
    rev, env, options = "", {}, []
    for token in shlex.split(spec):
        key, eq, value = token.partition("=")
        if token.startswith("@"):
            rev = token[1:]
        elif token.startswith("-"):
            options.append(token)
        elif eq and key.isupper():
            env[key] = value
        else:
            raise ValueError(
                f"variant {name}: {token!r} is not @REV, NAME=VALUE or -opt"
            )
    return Variant(name, rev, env, tuple(options))


def _code_dir(world: World, variant: Variant) -> Path:
    """The project as of ``variant.rev``, extracted once per run."""
    if not variant.rev:
        return PROJECT_ROOT
    if Path(variant.rev).is_dir():
        return Path(variant.rev).resolve()
    target = world.workdir / "variants" / variant.name
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", variant.rev],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def start(world: World, variants: list[Variant]) -> None:
    """One API per variant, with its own port, metrics port and directory."""
    for variant in variants:
        code = _code_dir(world, variant)
        api_port, metrics_port = server.free_ports(2)
        metrics_dir = world.workdir / "variants" / f"{variant.name}.metrics"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **world.env,
            **variant.env,
            "PORT": str(api_port),
            "METRICS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        if code != PROJECT_ROOT:
            env["PYTHONPATH"] = str(code)  # ahead of the editable install
        command = server.api_command(
            Settings.from_env(env), None, (*world.gunicorn_extra, *variant.gunicorn)
        )
        service = server.start(
            f"variant-{variant.name}", command, env, world.workdir, cwd=code
        )
        world.services[f"variant:{variant.name}"] = service
        world.ports[f"variant:{variant.name}"] = api_port
        server.wait_http(service, f"http://127.0.0.1:{api_port}/readyz")


def phase(world: World, figures: list[Figure]) -> None:
    variants = world.variants
    if not variants:
        raise RuntimeError("--only variants needs at least one --variant")
    start(world, variants)
    files = reads.request_files(world)
    p, wrk = world.profile, world.wrk
    targets = {"noop": (world.ports["noop"], files["noop"], world.cpu_meters("noop"))}
    for v in variants:
        key = f"variant:{v.name}"
        targets[v.name] = (world.ports[key], files["home"], world.cpu_meters(key))
    for port, path, meters in targets.values():
        load.closed(wrk, port, path, p.warmup_s, p.connections, meters)
    runs: dict[str, list[load.Measurement]] = {name: [] for name in targets}
    names = [v.name for v in variants]
    for r in range(max(ROUNDS, p.rounds)):
        order = ["noop", *names[r % len(names) :], *names[: r % len(names)]]
        for name in order:
            port, path, meters = targets[name]
            m = load.closed(wrk, port, path, p.read_s, p.connections, meters)
            if m.raw["requests"] == 0 or m.errors > 0.01 * m.raw["requests"]:
                raise RuntimeError(f"variant {name}: {m.errors} errors")
            runs[name].append(m)
    noop = runs["noop"]
    for v in variants:
        figures.append(_figure(v, runs[v.name], noop))


def _figure(v: Variant, ms: list[load.Measurement], noop) -> Figure:
    server_us = statistics.median(
        m.cpu_s["server"] / m.raw["requests"] * 1e6 for m in ms
    )
    return Figure(
        key=f"variant_{v.name}",
        label=f"home reads, variant {v.name}",
        unit="req/s",
        value=reads.best_rate(ms),
        baseline=reads.best_rate(noop),
        baseline_label="no-op route req/s",
        details={
            "spec": {"rev": v.rev, "env": v.env, "gunicorn": list(v.gunicorn)},
            "rates": [round(m.rate, 1) for m in ms],
            "mean_rate": round(statistics.fmean(m.rate for m in ms), 1),
            "per_core": round(reads.per_core(ms), 1),
            "baseline_per_core": round(reads.per_core(noop), 1),
            "per_core_ratio": round(reads.per_core(ms) / reads.per_core(noop), 4),
            "api_cpu_us_per_read": round(server_us, 1),
            "runs": [m.summary() for m in ms],
        },
    )
