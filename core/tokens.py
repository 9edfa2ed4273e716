"""Asymmetric JWTs: RS256 access and refresh tokens with ``kid`` key selection.

Only the API holds the private key; anything holding the public keys can verify.
Every claim that matters is checked: signature with a pinned algorithm, ``kid``
among the accepted keys, ``iss``, ``aud``, ``exp``, ``nbf``, and the token type,
so a refresh token is never accepted as an access token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from core import keyfiles
from core.errors import Unauthorized
from core.settings import Settings

ACCESS = "access"
REFRESH = "refresh"
LEEWAY_S = 5  # tolerated clock skew between pods
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Claims:
    user_id: int
    family_id: str
    jti: str
    token_type: str
    expires_at: int

    def ttl(self, now: float | None = None) -> int:
        return max(1, int(self.expires_at - (now or time.time())) + LEEWAY_S)


# Why: docs/design.md#key-rotation-without-a-restart
class TokenCodec:
    """Signs and verifies tokens with the keys of a key source."""

    def __init__(
        self, settings: Settings, private_key=None, public_keys=None, *, keys=None
    ):
        self._settings = settings
        if keys is None:
            public = dict(public_keys or {})
            kid = None
            if private_key is not None:
                kid = keyfiles.key_id(private_key.public_key())
                public.setdefault(kid, private_key.public_key())
            keys = keyfiles.StaticKeys(keyfiles.KeySet(private_key, kid, public))
        self._keys = keys
        self._verified: dict[tuple[str, str], Claims] = {}
        self._verified_with = keys.current()

    @classmethod
    def from_settings(cls, settings: Settings, signing: bool = True) -> TokenCodec:
        keys = keyfiles.WatchedKeys(
            settings.jwt_private_key_path if signing else None,
            settings.jwt_public_keys_path,
            propagation_s=settings.jwt_key_propagation_s,
        )
        return cls(settings, keys=keys)

    @property
    def kid(self) -> str | None:
        """The kid new tokens are signed with."""
        return self._keys.current().kid

    def issue(
        self, user_id: int, family_id: str, token_type: str
    ) -> tuple[str, Claims]:
        keys = self._keys.current()
        if keys.signing is None:
            raise RuntimeError("this process has no signing key")
        now = int(time.time())
        ttl = (
            self._settings.access_token_ttl_s
            if token_type == ACCESS
            else self._settings.refresh_token_ttl_s
        )
        claims = Claims(user_id, family_id, uuid.uuid4().hex, token_type, now + ttl)
        payload = {
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": claims.expires_at,
            "jti": claims.jti,
            "typ": token_type,
            "fam": family_id,
        }
        token = jwt.encode(
            payload,
            keys.signing,
            algorithm=keyfiles.ALGORITHM,
            headers={"kid": keys.kid},
        )
        return token, claims

    def verify(self, token: str, token_type: str) -> Claims:
        """Claims of a valid token of ``token_type``; Unauthorized otherwise."""
        # Why successes are remembered: docs/design.md#identity-and-tokens
        keys = self._keys.current()
        if keys is not self._verified_with:
            # A retired key must stop verifying, cached tokens included.
            self._verified = {}
            self._verified_with = keys
        cached = self._verified.get((token, token_type))
        if cached is not None:
            if cached.expires_at + LEEWAY_S < time.time():
                raise Unauthorized("Token expired", code="token_expired")
            return cached
        claims = self._verify(token, token_type, keys.public)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # crude but bounded; refills from live tokens
        self._verified[(token, token_type)] = claims
        return claims

    def _verify(self, token: str, token_type: str, public_keys: dict) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            key = public_keys.get(header.get("kid"))
            if key is None or header.get("alg") != keyfiles.ALGORITHM:
                raise Unauthorized(
                    "Token signed with an unknown key", code="invalid_token"
                )
            payload = jwt.decode(
                token,
                key,
                algorithms=[keyfiles.ALGORITHM],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "nbf", "sub", "jti", "typ", "fam"]},
            )
            if payload["typ"] != token_type:
                raise Unauthorized(f"Not an {token_type} token", code="invalid_token")
            return Claims(
                int(payload["sub"]),
                str(payload["fam"]),
                str(payload["jti"]),
                token_type,
                int(payload["exp"]),
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token expired", code="token_expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError):
            raise Unauthorized("Invalid token", code="invalid_token") from None

    def jwks(self) -> dict:
        """The JWKS document of every accepted verification key."""
        keys = []
        for kid, key in sorted(self._keys.current().public.items()):
            jwk = keyfiles.public_jwk(key)
            jwk.update({"kid": kid, "use": "sig", "alg": keyfiles.ALGORITHM})
            keys.append(jwk)
        return {"keys": keys}
