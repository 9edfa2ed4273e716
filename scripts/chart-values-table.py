"""Write (or, with --check, verify) the values table of charts/twitter/README.md.

The table is generated from values.yaml: one row per `# <key> -- <description>`
comment, with the key's default as JSON. It sits between two HTML comments in
the README, so the prose around it is hand-written.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[1] / "charts" / "twitter"
BEGIN = "<!-- values-table:begin (scripts/chart-values-table.py) -->"
END = "<!-- values-table:end -->"
KEY_COMMENT = re.compile(r"^\s*# ([A-Za-z][A-Za-z0-9_.]*) -- (.*)$")
COMMENT = re.compile(r"^\s*#\s?(.*)$")


def documented(values_text: str) -> list[tuple[str, str]]:
    """(key, description) for every key comment, in file order."""
    rows: list[tuple[str, list[str]]] = []
    current = None
    for line in values_text.splitlines():
        match = KEY_COMMENT.match(line)
        if match:
            current = [match.group(2).strip()]
            rows.append((match.group(1), current))
            continue
        comment = COMMENT.match(line)
        if comment and current is not None:
            current.append(comment.group(1).strip())
        else:
            current = None
    return [(key, " ".join(p for p in parts if p)) for key, parts in rows]


def dig(values: dict, key: str):
    node = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for key, description in documented(values_text):
        default = json.dumps(dig(values, key), separators=(",", ":"))
        cells = (f"`{key}`", f"`{default}`", description)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def render(readme: str, values_text: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + table(values_text) + "\n" + readme[end:]


def main(argv: list[str]) -> int:
    readme_path = CHART / "README.md"
    readme = readme_path.read_text()
    wanted = render(readme, (CHART / "values.yaml").read_text())
    if "--check" in argv:
        if wanted != readme:
            print(
                "charts/twitter/README.md: values table out of date; run "
                "python scripts/chart-values-table.py"
            )
            return 1
        return 0
    readme_path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
