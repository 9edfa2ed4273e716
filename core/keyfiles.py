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
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)

ALGORITHM = "RS256"  # chosen by measurement: see docs/design.md "Why RS256"
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


# -- Rotation without restarts ----------------------------------------------------
#
# The private-key directory may hold, beside the signing key, the key it
# replaces and the wall-clock second from which the new one may sign (written by
# `python -m keys rotate`). Verifiers elsewhere learn the new public key only when
# their kubelet refreshes the mounted Secret (up to a minute or two), so the
# signer keeps using the previous key until then: a token is never signed with a
# key that some pod cannot verify yet.
PREVIOUS_KEY_FILE = "previous.pem"
ACTIVE_AFTER_FILE = "active-after"
KEY_CHECK_S = 2.0  # how often a process looks for changed key files


@dataclass(frozen=True)
class KeySet:
    """What a process signs and verifies with at one moment."""

    signing: rsa.RSAPrivateKey | None
    kid: str | None
    public: dict[str, rsa.RSAPublicKey]


class StaticKeys:
    """A fixed key set (tests, tools)."""

    def __init__(self, keys: KeySet):
        self._keys = keys

    def current(self) -> KeySet:
        return self._keys


def _stat(path: Path):
    try:
        st = path.stat()  # follows the kubelet's ..data symlinks
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


# Why: docs/design.md#key-rotation-without-a-restart
class WatchedKeys:
    """The key files of one process, re-read when they change on disk."""

    def __init__(
        self,
        private_path: str | os.PathLike | None,
        public_path: str | os.PathLike,
        *,
        propagation_s: float = 0,
        clock=time.time,
        monotonic=time.monotonic,
    ):
        self._private = Path(private_path) if private_path else None
        self._public = Path(public_path)
        self._propagation_s = propagation_s
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._first_seen: dict[str, float] = {}
        self._loaded_once = False
        self._last_signing: rsa.RSAPrivateKey | None = None
        self._stamp = self._stamp_now()
        self._files = self._read()
        self._keys = self._decide()
        self._next_check = monotonic() + KEY_CHECK_S

    def current(self) -> KeySet:
        now = self._monotonic()
        if now >= self._next_check and self._lock.acquire(blocking=False):
            try:
                self._next_check = now + KEY_CHECK_S
                self._refresh()
            finally:
                self._lock.release()
        return self._keys

    def _refresh(self) -> None:
        stamp = self._stamp_now()
        if stamp != self._stamp:
            try:
                files = self._read()
            except (OSError, ValueError) as ex:
                log.warning("keeping the current JWT keys: %s", ex)
                return  # retried at the next check: the stamp stays old
            self._stamp, self._files = stamp, files
        keys = self._decide()
        old = self._keys
        if (
            keys.signing is not old.signing
            or keys.public.keys() != old.public.keys()
            or any(keys.public[k] is not old.public[k] for k in keys.public)
        ):
            # Replaced only on change: callers cache work per key set.
            self._keys = keys

    def _stamp_now(self) -> tuple:
        public = (
            sorted((p.name, _stat(p)) for p in self._public.glob("*.pem"))
            if self._public.is_dir()
            else [_stat(self._public)]
        )
        private = ()
        if self._private is not None:
            folder = self._private.parent
            private = tuple(
                _stat(p)
                for p in (
                    self._private,
                    folder / PREVIOUS_KEY_FILE,
                    folder / ACTIVE_AFTER_FILE,
                )
            )
        return (tuple(public), private)

    def _read(self) -> dict:
        public = load_public_keys(self._public)
        now = self._clock()
        for kid in public:
            if kid not in self._first_seen:
                # Keys present at start count as propagated long ago.
                self._first_seen[kid] = now if self._loaded_once else float("-inf")
        self._loaded_once = True
        files = {"public": public, "current": None, "previous": None, "after": None}
        if self._private is not None:
            folder = self._private.parent
            files["current"] = load_private_key(self._private)
            previous = folder / PREVIOUS_KEY_FILE
            if previous.exists():
                files["previous"] = load_private_key(previous)
            after = folder / ACTIVE_AFTER_FILE
            if after.exists():
                files["after"] = float(after.read_text().strip() or 0)
        return files

    def _decide(self) -> KeySet:
        files = self._files
        public = dict(files["public"])
        signing = files["current"]
        if signing is not None:
            signing = self._choose(signing, files["previous"], files["after"], public)
            self._last_signing = signing
            kid = key_id(signing.public_key())
            # This process always verifies what it signs.
            public.setdefault(kid, signing.public_key())
            return KeySet(signing, kid, public)
        return KeySet(None, None, public)

    def _choose(self, new, previous, active_after, public):
        now = self._clock()
        new_kid = key_id(new.public_key())
        ready = (
            new_kid in public
            and (active_after is None or now >= active_after)
            and now >= self._first_seen.get(new_kid, now) + self._propagation_s
        )
        if ready:
            return new
        for older in (previous, self._last_signing):
            if older is not None and key_id(older.public_key()) in public:
                return older
        # Nothing older that verifiers know: better sign than refuse logins.
        return new
