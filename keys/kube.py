"""JWT key and generated-credential Secrets in Kubernetes.

Everything here is create-if-absent: an existing key or password is never
replaced, except by an explicit rotation, which adds the new public key before the
private key changes so verifiers always know the signing key.

Each call maps to one RBAC verb on ``secrets``: ``get`` (read), ``create`` and
``patch`` (a dict body, which the client sends as a strategic merge patch: for
a Secret's maps that merges keys, and null deletes one; guarded by
``resourceVersion`` where a lost update would matter). The chart's Role grants
exactly these; tests/deploy checks that both agree.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from core import keyfiles

PRIVATE_KEY = "private.pem"  # the one data key of the private Secret
ANNOTATION_KID = "twitter-backend/kid"  # signing key's kid, for humans
ANNOTATION_ROTATION = "twitter-backend/rotation"  # last jwt.rotation applied
MANAGED_BY = {"app.kubernetes.io/managed-by": "twitter-keys"}
GENERATED_BYTES = 32  # random bytes per generated credential (64 hex chars)
CONFLICT_RETRIES = 3


class KeysError(RuntimeError):
    """A Kubernetes call failed in a way an operator has to fix."""


def public_key_name(kid: str) -> str:
    """Data key of a verification key in the public Secret."""
    return f"{kid}.pem"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _reason(ex: ApiException) -> str:
    try:
        return json.loads(ex.body).get("message") or ex.reason
    except (TypeError, ValueError):
        return str(ex.reason)


@dataclass
class SecretStore:
    """Secrets of one namespace, through a ``CoreV1Api``."""

    api: client.CoreV1Api
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def _fail(self, verb: str, name: str, ex: ApiException) -> KeysError:
        if ex.status == 403:
            return KeysError(
                f"forbidden to {verb} secret {name!r} in namespace "
                f"{self.namespace!r}: the ServiceAccount's Role must allow "
                f"{verb!r} on secrets ({_reason(ex)})"
            )
        return KeysError(
            f"{verb} secret {name!r} in namespace {self.namespace!r} failed: "
            f"HTTP {ex.status} {_reason(ex)}"
        )

    def read(self, name: str) -> client.V1Secret | None:
        """The Secret, or None when it does not exist (verb: get)."""
        try:
            return self.api.read_namespaced_secret(name, self.namespace)
        except ApiException as ex:
            if ex.status == 404:
                return None
            raise self._fail("get", name, ex) from None

    def create(
        self,
        name: str,
        data: Mapping[str, bytes],
        annotations: Mapping[str, str] | None = None,
    ) -> client.V1Secret | None:
        """Create the Secret; None when it already exists (verb: create)."""
        body = client.V1Secret(
            api_version="v1",
            kind="Secret",
            type="Opaque",
            metadata=client.V1ObjectMeta(
                name=name,
                labels={**self.labels, **MANAGED_BY},
                annotations=dict(annotations or {}) or None,
            ),
            data={key: _b64(value) for key, value in data.items()},
        )
        try:
            return self.api.create_namespaced_secret(self.namespace, body)
        except ApiException as ex:
            if ex.status == 409:
                return None
            raise self._fail("create", name, ex) from None

    def patch(
        self,
        name: str,
        data: Mapping[str, bytes | None],
        annotations: Mapping[str, str] | None = None,
        resource_version: str | None = None,
    ) -> client.V1Secret | None:
        """Merge ``data`` into the Secret (None deletes a key) (verb: patch).

        With ``resource_version`` the patch applies only to that version and
        returns None if the Secret changed meanwhile.
        """
        metadata: dict = {}
        if annotations:
            metadata["annotations"] = dict(annotations)
        if resource_version:
            metadata["resourceVersion"] = resource_version
        body = {
            "data": {k: None if v is None else _b64(v) for k, v in data.items()},
        }
        if metadata:
            body["metadata"] = metadata
        try:
            return self.api.patch_namespaced_secret(name, self.namespace, body)
        except ApiException as ex:
            if ex.status == 409 and resource_version:
                return None
            raise self._fail("patch", name, ex) from None


def secret_data(secret: client.V1Secret) -> dict[str, bytes]:
    """Decoded data of a Secret."""
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}


def _annotations(secret: client.V1Secret) -> dict[str, str]:
    return dict(secret.metadata.annotations or {})


def _load_private(pem: bytes, name: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeysError(f"secret {name!r} does not hold an RSA private key")
    return key


def _signing_key(secret: client.V1Secret, name: str) -> rsa.RSAPrivateKey:
    pem = secret_data(secret).get(PRIVATE_KEY)
    if pem is None:
        raise KeysError(f"secret {name!r} has no {PRIVATE_KEY!r} key")
    return _load_private(pem, name)


def add_public_key(store: SecretStore, name: str, kid: str, pem: bytes) -> bool:
    """Make ``<kid>.pem`` one of the public keys; True if it was added."""
    public = store.read(name)
    if public is None:
        if store.create(name, {public_key_name(kid): pem}) is not None:
            return True
        public = store.read(name)  # created concurrently
        if public is None:
            raise KeysError(f"secret {name!r} vanished while being created")
    if public_key_name(kid) in (public.data or {}):
        return False
    # A merge patch adds one key and leaves the others alone.
    store.patch(name, {public_key_name(kid): pem})
    return True


def _drop_public_key(store: SecretStore, name: str, kid: str) -> None:
    store.patch(name, {public_key_name(kid): None})


@dataclass
class JwtResult:
    """What ensure_jwt found and did."""

    kid: str
    created: bool = False
    rotated_from: str | None = None
    public_added: bool = False
    retired: list[str] = field(default_factory=list)


def _new_keypair() -> tuple[str, bytes, bytes]:
    key = keyfiles.generate_private_key()
    public = key.public_key()
    return (
        keyfiles.key_id(public),
        keyfiles.private_pem(key),
        keyfiles.public_pem(public),
    )


def ensure_jwt(
    store: SecretStore,
    private_name: str,
    public_name: str,
    *,
    rotation: int = 0,
    retire: Iterable[str] = (),
    propagation_s: int = 0,
) -> JwtResult:
    """Create the key pair if absent; rotate only when ``rotation`` is raised."""
    private = store.read(private_name)
    if private is None:
        kid, private_pem, public_pem = _new_keypair()
        # Publish the verification key first: no token can be signed before it.
        add_public_key(store, public_name, kid, public_pem)
        annotations = {ANNOTATION_KID: kid, ANNOTATION_ROTATION: str(rotation)}
        if store.create(private_name, {PRIVATE_KEY: private_pem}, annotations):
            result = JwtResult(kid=kid, created=True, public_added=True)
            result.retired = retire_kids(store, private_name, public_name, retire)
            return result
        # Another run won the race: keep its key, drop ours.
        _drop_public_key(store, public_name, kid)
        private = store.read(private_name)
        if private is None:
            raise KeysError(f"secret {private_name!r} vanished while being created")

    key = _signing_key(private, private_name)
    kid = keyfiles.key_id(key.public_key())
    result = JwtResult(kid=kid)
    # Heals a public Secret that was deleted or edited by hand.
    result.public_added = add_public_key(
        store, public_name, kid, keyfiles.public_pem(key.public_key())
    )
    applied = int(_annotations(private).get(ANNOTATION_ROTATION, "0") or 0)
    if rotation > applied:
        result.rotated_from = kid
        result.kid = rotate_jwt(
            store,
            private_name,
            public_name,
            rotation=rotation,
            propagation_s=propagation_s,
        )
    result.retired = retire_kids(store, private_name, public_name, retire)
    return result


def rotate_jwt(
    store: SecretStore,
    private_name: str,
    public_name: str,
    *,
    rotation: int | None = None,
    propagation_s: int = 0,
    now: float | None = None,
) -> str:
    """Rotate to a new signing key, keeping the old public key; returns the kid.

    The new public key is published first. The private Secret then holds the
    new key, the one it replaces (``previous.pem``) and ``active-after``: running
    API pods pick the files up without a restart (core.keyfiles.WatchedKeys) and
    keep signing with the previous key until ``propagation_s`` have passed, by
    which time every pod's kubelet has the new public key.
    """
    private = store.read(private_name)
    if private is None:
        raise KeysError(f"secret {private_name!r} does not exist: nothing to rotate")
    if rotation is None:
        rotation = int(_annotations(private).get(ANNOTATION_ROTATION, "0") or 0) + 1
    previous_pem = secret_data(private).get(PRIVATE_KEY)
    _signing_key(private, private_name)  # refuse to rotate away from garbage
    kid, private_pem, public_pem = _new_keypair()
    add_public_key(store, public_name, kid, public_pem)
    annotations = {ANNOTATION_KID: kid, ANNOTATION_ROTATION: str(rotation)}
    active_after = int((time.time() if now is None else now) + propagation_s)
    patched = store.patch(
        private_name,
        {
            PRIVATE_KEY: private_pem,
            keyfiles.PREVIOUS_KEY_FILE: previous_pem,
            keyfiles.ACTIVE_AFTER_FILE: str(active_after).encode(),
        },
        annotations,
        resource_version=private.metadata.resource_version,
    )
    if patched is None:
        _drop_public_key(store, public_name, kid)
        raise KeysError(
            f"secret {private_name!r} changed during the rotation; run it again"
        )
    return kid


def retire_kids(
    store: SecretStore, private_name: str, public_name: str, kids: Iterable[str]
) -> list[str]:
    """Drop verification keys whose tokens have all expired; returns those removed."""
    kids = list(dict.fromkeys(kids))
    if not kids:
        return []
    private = store.read(private_name)
    if private is not None:
        key = _signing_key(private, private_name)
        current = keyfiles.key_id(key.public_key())
        if current in kids:
            raise KeysError(f"refusing to retire {current}: it is the signing key")
    for _ in range(CONFLICT_RETRIES):
        public = store.read(public_name)
        held = (public.data or {}) if public is not None else {}
        present = [k for k in kids if public_key_name(k) in held]
        if not present:
            return []
        patched = store.patch(
            public_name,
            {public_key_name(k): None for k in present},
            resource_version=public.metadata.resource_version,
        )
        if patched is not None:
            return present
    raise KeysError(f"secret {public_name!r} keeps changing; run again")


def ensure_generated(store: SecretStore, name: str, keys: Iterable[str]) -> list[str]:
    """Random values for the ``keys`` the Secret lacks; never changes existing ones."""
    keys = list(dict.fromkeys(keys))
    for _ in range(CONFLICT_RETRIES):
        existing = store.read(name)
        if existing is None:
            fresh = {k: secrets.token_hex(GENERATED_BYTES).encode() for k in keys}
            if store.create(name, fresh) is not None:
                return keys
            continue  # created concurrently: look again
        missing = [k for k in keys if k not in (existing.data or {})]
        if not missing:
            return []
        fresh = {k: secrets.token_hex(GENERATED_BYTES).encode() for k in missing}
        rv = existing.metadata.resource_version
        if store.patch(name, fresh, resource_version=rv) is not None:
            return missing
    raise KeysError(f"secret {name!r} keeps changing; run again")
