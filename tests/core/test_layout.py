"""The import rules of the architecture, checked on the source itself."""

from __future__ import annotations

import ast
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
