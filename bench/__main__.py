"""``python -m bench [--quick]``: see bench/README.md."""

from __future__ import annotations

import argparse
import sys

from bench import config, infra, run, variants


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny data set, ~1 minute: checks the harness",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--name", help="results/<name>.json (default: the profile)")
    parser.add_argument(
        "--python-load", action="store_true", help="use bench.pyload even if wrk exists"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database, vhost and Redis keys"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also sample the API and worker with py-spy (installed on first use)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(run.PHASES),
        help="measure only these phases (repeatable)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="experiment: override a service setting, e.g. WEB_THREADS=2",
    )
    parser.add_argument(
        "--gunicorn",
        action="append",
        default=[],
        metavar="OPTION",
        help="experiment: extra gunicorn option for the API and the no-op alike, "
        "e.g. --gunicorn=--max-requests=0",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="experiment: one more API to compare with --only variants; SPEC is "
        "@REV (code of a git revision), NAME=VALUE settings and gunicorn options, "
        "e.g. --variant 'stock=--worker-class=gthread --reuse-port'",
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="run the services on a local Redis Cluster (scripts/redis-cluster.sh)",
    )
    parser.add_argument(
        "--shared-redis",
        action="store_true",
        help="use the machine's Redis (127.0.0.1:6379) instead of a server of the "
        "run's own, whose CPU counts only this run",
    )
    args = parser.parse_args(argv)
    if args.redis_cluster:
        infra.use_redis_cluster()
    elif not args.shared_redis:
        infra.use_private_redis()
    overrides = []
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.isupper():
            parser.error(f"--set wants NAME=VALUE, got {item!r}")
        overrides.append((key, value))
    try:
        found = tuple(variants.parse(item) for item in args.variant)
    except ValueError as ex:
        parser.error(str(ex))
    options = run.Options(
        seed=args.seed,
        name=args.name or "",
        keep=args.keep,
        use_wrk=not args.python_load,
        profile_server=args.profile,
        only=tuple(args.only or ()),
        overrides=tuple(overrides),
        gunicorn=tuple(args.gunicorn),
        variants=found,
    )
    return run.execute(config.QUICK if args.quick else config.FULL, options)


if __name__ == "__main__":
    sys.exit(main())
