"""Opaque, tamper-evident pagination cursors.

A cursor names the list it belongs to (kind + owner) and the position after
which the next page starts, signed with HMAC-SHA256 under CURSOR_SECRET. A cursor
that does not decode, was altered, or belongs to another list is refused.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from core.errors import BadRequest

_SIG_BYTES = 12
# Positions are ids (tweets, follow edges): positive signed 64-bit integers.
# Anything else would reach struct packing or a bigint column and fail there.
MAX_POSITION = (1 << 63) - 1


class CursorCodec:
    def __init__(self, secret: str):
        self._secret = secret.encode()

    def _sign(self, payload: bytes) -> bytes:
        # the one-shot C call: hmac.new() builds two hash objects in Python
        # first
        return hmac.digest(self._secret, payload, "sha256")[:_SIG_BYTES]

    def encode(self, kind: str, owner: int | str, position: int) -> str:
        payload = f"{kind}:{owner}:{position}".encode()
        raw = payload + self._sign(payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, token: str, kind: str, owner: int | str) -> int:
        """The position in ``token``; BadRequest(invalid_cursor) if not ours."""
        invalid = BadRequest(
            "The cursor is not valid for this list", code="invalid_cursor"
        )
        if not token or len(token) > 200:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        # Lenient base64 skips stray characters and padding: only the exact
        # text the server issued is its cursor (an altered one is refused)
        if base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode():
            raise invalid
        payload, sig = raw[:-_SIG_BYTES], raw[-_SIG_BYTES:]
        if len(raw) <= _SIG_BYTES or not hmac.compare_digest(sig, self._sign(payload)):
            raise invalid
        try:
            got_kind, got_owner, position = payload.decode().split(":")
        except ValueError:
            raise invalid from None
        if got_kind != kind or got_owner != str(owner):
            raise invalid
        # int() would also take "+1", " 1", "1_0" and 4,300 digits
        if not (position.isascii() and position.isdigit()) or len(position) > 19:
            raise invalid
        value = int(position)
        if not 0 < value <= MAX_POSITION:
            raise invalid
        return value
