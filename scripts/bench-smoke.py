"""The benchmark smoke runs of `make test`: `python -m bench --quick`, then
`python -m bench.curves --smoke` (cost curves, sustained load and the capacity
document at tiny sizes: the harness works and its JSON is well-formed).

The benchmarks drive the machine's PostgreSQL, Redis and RabbitMQ. Where those
are missing (a laptop with only Python, where the suite ran on embedded
servers) the smoke run is skipped with a visible reason, never in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.embedded import reachable  # noqa: E402

SERVICES = {
    "PostgreSQL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "Redis": "redis://127.0.0.1:6379/0",
    "RabbitMQ": "amqp://guest:guest@127.0.0.1:5672/",
}


def main() -> int:
    missing = [name for name, url in SERVICES.items() if not reachable(url)]
    if missing and not os.environ.get("CI"):
        print(
            f"bench smoke run skipped: {', '.join(missing)} not reachable "
            "(the benchmarks need the real services)"
        )
        return 0
    for args in (["bench", "--quick"], ["bench.curves", "--smoke"]):
        code = subprocess.call([sys.executable, "-m", *args], cwd=ROOT)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
