"""argon2id password hashing; cost parameters are settings.

Production defaults follow OWASP's 2024 minimum for argon2id (m=19 MiB, t=2,
p=1); tests use tiny costs. Hashes embed their parameters, so raising the costs
later re-hashes each password on its owner's next login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.settings import Settings


class Passwords:
    def __init__(self, settings: Settings):
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified when the user does not exist, so that "unknown user" costs
        # the same time as "wrong password" and cannot be told apart.
        self._dummy_hash = self._hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Constant-work check; ``None`` hash means no such user."""
        try:
            return self._hasher.verify(
                password_hash or self._dummy_hash, password
            ) and (password_hash is not None)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
