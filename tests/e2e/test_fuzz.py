"""Schemathesis against a live gunicorn: every check, every operation.

The OpenAPI document is what clients generate from; this run holds the server
to it: no 5xx, only documented statuses, content types and headers, response
bodies that match their schemas, schema-valid input accepted and invalid input
refused, auth enforced where declared, and the stateful links (create a tweet,
then read, like, retweet and delete it; sign up, then read the profile).

Bounded for CI (about two minutes on two cores: ``MAX_EXAMPLES`` per operation
and a time budget) and seeded, so a run is reproducible. Any failure fails the
test; nothing is excluded or silenced (see fuzz_hooks.py for the two things the
hooks do, and why).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e import test_gunicorn
from tests.e2e.test_gunicorn import ROOT

server = test_gunicorn.server  # the fixture: real gunicorn and a real worker

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "150"))
SEED = 20261206


@pytest.mark.slow
# ~4.5 min on a quiet machine: the suite-wide 300 s limit cut it on a busy one
@pytest.mark.timeout(660)
def test_schemathesis_finds_nothing(server, tmp_path):
    env = dict(
        os.environ,
        FUZZ_BASE_URL=server.base,
        SCHEMATHESIS_HOOKS="tests.e2e.fuzz_hooks",
        PYTHONPATH=str(ROOT),
    )
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(ROOT / "tests" / "e2e" / "schemathesis.toml"),
        "run",
        f"{server.base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        # one worker: Hypothesis describes strategies through the ast module,
        # which is not thread-safe (a run with two crashed on "AST constructor
        # recursion depth mismatch", an error in the tool, not the API)
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    output = run.stdout + run.stderr
    # kept for reading after a failure (the server's logs crowd pytest's report)
    report = ROOT / "var" / "fuzz-report.txt"
    report.parent.mkdir(exist_ok=True)
    report.write_text(output)
    assert run.returncode == 0, f"see {report}\n" + output[-20000:]
