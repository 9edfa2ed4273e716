"""The cluster-side helpers of core.redis_client against Redis's own rules."""

from __future__ import annotations

from redis.crc import key_slot

from core.keys import Keys
from core.redis_client import hash_tag


def test_keys_grouped_by_hash_tag_share_a_slot_as_redis_computes_it():
    keys = Keys("tw:")
    cases = [
        keys.home(42),
        keys.tweet(42, 917219082839732224),
        keys.name(42),
        keys.user_id("Kate"),
        "plain-key",
        "empty{}tag",
        "{first}{second}",
        "{unclosed",
        "a{}b{c}",
    ]
    for key in cases:
        # grouping by hash_tag is only sound if it is what Redis hashes
        assert key_slot(key.encode()) == key_slot(hash_tag(key).encode()), key
    assert len({hash_tag(k) for k in cases[:3]}) == 1  # one user's keys, one MGET
