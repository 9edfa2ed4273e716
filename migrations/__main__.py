"""``python -m migrations [apply|check|wait --timeout S]``."""

from __future__ import annotations

import argparse
import sys

from core.db import init_database
from core.settings import Settings
from migrations import runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrations")
    parser.add_argument(
        "command", nargs="?", default="apply", choices=["apply", "check", "wait"]
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    init_database(Settings.from_env())
    if args.command == "apply":
        names = runner.migrate()
        print(f"schema current ({len(names)} applied)")
        return 0
    if args.command == "check":
        from core.db import database

        with database.connection_context():
            missing = runner.pending()
        for _, name in missing:
            print(f"pending: {name}")
        return 3 if missing else 0
    return 0 if runner.wait_until_current(args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
