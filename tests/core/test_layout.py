"""The import rules of the architecture, checked on the source itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports_of(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_core_imports_neither_falcon_nor_dramatiq_nor_the_outer_layers():
    for module, names in imports_of("core").items():
        assert not names & {"falcon", "dramatiq", "api", "workers", "cli"}, module


def test_workers_never_import_the_api():
    for module, names in imports_of("workers").items():
        assert "api" not in names and "falcon" not in names, module


def test_api_reaches_workers_only_through_the_outbox():
    for module, names in imports_of("api").items():
        assert "workers" not in names and "dramatiq" not in names, module


def test_only_settings_reads_the_environment():
    for package in ("core", "api", "workers", "migrations", "keys"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "settings.py" and package == "core":
                continue
            assert "os.environ" not in path.read_text(), path


# Modules whose hand-written SQL runs on a per-request or per-job hot path
# (README, "Queries"); every other query is a peewee chain over core.models.
HAND_WRITTEN_SQL = {
    "core/db.py",  # the helpers that run it (and PREPARE/EXECUTE)
    "core/fanout.py",
    "core/hydrate.py",
    "core/outbox.py",  # the part of the tweet create's statement
    "core/read_cache.py",
    "core/services/tweets.py",  # the tweet create
    "core/timelines.py",
    "workers/relay.py",
}
SQL_TEXT = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+( \w+)? SET|DELETE FROM)\b")


def sql_strings(path: Path) -> list[str]:
    """String literals of ``path`` that look like SQL (docstrings aside)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and SQL_TEXT.search(node.value)
    ]


def test_hand_written_sql_stays_on_the_hot_paths():
    found = {
        str(path.relative_to(ROOT))
        for package in ("core", "api", "workers", "cli")
        for path in (ROOT / package).rglob("*.py")
        if sql_strings(path)
    }
    assert found <= HAND_WRITTEN_SQL, found - HAND_WRITTEN_SQL
