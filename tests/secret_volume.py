"""A directory updated the way the kubelet updates a Secret volume.

The kubelet writes every version into a fresh ``..<timestamp>`` directory, swaps
the ``..data`` symlink to it in one rename, and the visible files are symlinks
through ``..data``; readers never see a half-written version.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from core import keyfiles

_versions = itertools.count()


class SecretVolume:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, files: dict[str, bytes]) -> None:
        version = self.root / f"..v{next(_versions)}"
        version.mkdir()
        for name, data in files.items():
            (version / name).write_bytes(data)
        tmp = self.root / "..data_tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(version.name)
        os.replace(tmp, self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(Path("..data") / name)
        for entry in self.root.iterdir():
            if (
                entry.is_symlink()
                and entry.name not in files
                and entry.name[:2] != ".."
            ):
                entry.unlink()


def keypair() -> tuple[str, bytes, bytes]:
    """(kid, private PEM, public PEM) of a new key."""
    key = keyfiles.generate_private_key()
    return (
        keyfiles.key_id(key.public_key()),
        keyfiles.private_pem(key),
        keyfiles.public_pem(key.public_key()),
    )
