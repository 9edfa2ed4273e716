"""Reading and writing the JWT key files.

The private key is one PEM file (only API pods mount it). Verification keys are
every ``*.pem`` file in a directory (or one file), so a rotation adds a file and
tokens signed with the previous key keep verifying until the old file is removed.
A key's ``kid`` is its RFC 7638 thumbprint, so file names carry no meaning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"  # chosen by measurement: see README "Why RS256"
RSA_KEY_BITS = 2048


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: rsa.RSAPublicKey) -> dict:
    """The key as a JWK (without ``kid``)."""
    numbers = public_key.public_numbers()
    return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint: stable for the key, independent of where it is stored."""
    jwk = public_jwk(public_key)
    canonical = json.dumps(
        {k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(public_key: rsa.RSAPublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(path: str | os.PathLike) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def load_public_keys(path: str | os.PathLike) -> dict[str, rsa.RSAPublicKey]:
    """Every verification key under ``path`` (a PEM directory or one PEM), by kid."""
    path = Path(path)
    files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
    keys = {}
    for file in files:
        key = serialization.load_pem_public_key(file.read_bytes())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"{file} does not hold an RSA public key")
        keys[key_id(key)] = key
    return keys


def write_keypair(
    private_path: str | os.PathLike, public_dir: str | os.PathLike
) -> str:
    """Generate a keypair, write it, and return its kid (dev and tooling)."""
    key = generate_private_key()
    kid = key_id(key.public_key())
    private_path, public_dir = Path(private_path), Path(public_dir)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(key))
    (public_dir / f"{kid}.pem").write_bytes(public_pem(key.public_key()))
    return kid


def ensure_dev_keypair(private_path: str, public_dir: str) -> bool:
    """Create the local dev keypair on first run; True when one was created."""
    if Path(private_path).exists():
        return False
    write_keypair(private_path, public_dir)
    return True
