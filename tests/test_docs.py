"""The documentation keeps up with the code: every setting has a row, every
relative link lands on a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import settings_read

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
LINKED_DOCS = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "charts" / "twitter").glob("*.md"),
        ROOT / "bench" / "README.md",
    ]
)
# [text](target) outside code; images too. Targets with a scheme are not ours.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def documented_settings(text: str) -> set[str]:
    """Names in the first cell of the table rows: `A` or `A`, `B`."""
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names


def test_every_setting_has_a_row_in_the_configuration_table():
    read = settings_read()
    assert len(read) > 40, "the recording environment saw too few reads"
    documented = documented_settings(CONFIGURATION.read_text())
    assert read - documented == set(), "settings missing from docs/configuration.md"
    assert documented - read == set(), "rows for settings the code no longer reads"


def without_code(text: str) -> str:
    """Markdown with fenced blocks and inline code blanked out."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces
    to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for line in re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S).split(
        "\n"
    ):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(doc: Path) -> list[str]:
    broken = []
    for target in LINK.findall(without_code(doc.read_text())):
        if SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif not dest.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    assert broken_links(doc) == []


def test_link_check_notices_a_missing_file_and_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Title\n\n## A `code` heading, too\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md#a-code-heading-too) [top](#here) [gone](missing.md)\n"
        "[bad](other.md#nope) `[not a link](nowhere.md)`\n\n# Here\n"
    )
    assert broken_links(doc) == [
        "missing.md: no such file",
        "other.md#nope: no heading #nope in other.md",
    ]


def test_readme_states_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```")
    first_block = readme[start : readme.index("```", start + 3)]
    assert "make run" in first_block and "make test" in first_block
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec make test" in ci, ".ci/run runs the README's test command"
    assert len(readme.splitlines()) <= 70, "the README fits on a screen"


CODE_DIRS = ("core", "api", "workers", "cli")
WHY = re.compile(r"\bWhy:\s*([\w./-]+\.md)(?:#([\w-]+))?")
BENCH_SECTION = re.compile(r"bench/README\.md, \"([^\"]+)\"")


def test_code_links_to_the_docs_resolve():
    # Given the code's "# Why: docs/page.md#section" and bench/README.md references
    bench = (ROOT / "bench" / "README.md").read_text()
    bench_places = [
        line.lstrip("#* ").strip()
        for line in bench.splitlines()
        if line.startswith(("#", "**"))
    ]
    broken = []
    for folder in CODE_DIRS:
        for source in sorted((ROOT / folder).rglob("*.py")):
            text = source.read_text()
            where = source.relative_to(ROOT)
            # When each is looked up
            for page, anchor in WHY.findall(text):
                dest = ROOT / page
                if not dest.exists():
                    broken.append(f"{where}: {page}: no such file")
                elif anchor and anchor not in anchors(dest):
                    broken.append(f"{where}: {page}#{anchor}: no such heading")
            for section in BENCH_SECTION.findall(text):
                if not any(place.startswith(section) for place in bench_places):
                    broken.append(f"{where}: bench/README.md, {section!r}: not found")
    # Then every one lands on a page and heading that exist
    assert broken == []
