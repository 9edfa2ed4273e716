"""Reading the Dockerfile as (INSTRUCTION, arguments) pairs, for the deploy tests."""

from __future__ import annotations

from pathlib import Path


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = dockerfile.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out
