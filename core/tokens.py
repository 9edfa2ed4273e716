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


class TokenCodec:
    """Signs and verifies tokens; key objects are parsed once, at start-up."""

    def __init__(self, settings: Settings, private_key=None, public_keys=None):
        self._settings = settings
        self._private_key = private_key
        self._kid = keyfiles.key_id(private_key.public_key()) if private_key else None
        self._public_keys = dict(public_keys or {})
        self._verified: dict[tuple[str, str], Claims] = {}
        if self._kid and self._kid not in self._public_keys:
            self._public_keys[self._kid] = private_key.public_key()

    @classmethod
    def from_settings(cls, settings: Settings, signing: bool = True) -> TokenCodec:
        private_key = (
            keyfiles.load_private_key(settings.jwt_private_key_path)
            if signing
            else None
        )
        public_keys = keyfiles.load_public_keys(settings.jwt_public_keys_path)
        return cls(settings, private_key, public_keys)

    def issue(
        self, user_id: int, family_id: str, token_type: str
    ) -> tuple[str, Claims]:
        if self._private_key is None:
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
            self._private_key,
            algorithm=keyfiles.ALGORITHM,
            headers={"kid": self._kid},
        )
        return token, claims

    def verify(self, token: str, token_type: str) -> Claims:
        """Claims of a valid token of ``token_type``; Unauthorized otherwise.

        A token that verified once is remembered until it expires: clients
        send the same token on every request, and re-checking an RSA
        signature and every claim each time is the costliest step of a
        cheap read. Only successes are cached (by the whole token string),
        expiry is re-checked on every use, and revocation is not cached at
        all (see core.revocation).
        """
        cached = self._verified.get((token, token_type))
        if cached is not None:
            if cached.expires_at + LEEWAY_S < time.time():
                raise Unauthorized("Token expired", code="token_expired")
            return cached
        claims = self._verify(token, token_type)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()  # crude but bounded; refills from live tokens
        self._verified[(token, token_type)] = claims
        return claims

    def _verify(self, token: str, token_type: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._public_keys.get(header.get("kid"))
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
        for kid, key in sorted(self._public_keys.items()):
            jwk = keyfiles.public_jwk(key)
            jwk.update({"kid": kid, "use": "sig", "alg": keyfiles.ALGORITHM})
            keys.append(jwk)
        return {"keys": keys}
