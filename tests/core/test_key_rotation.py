"""JWT keys rotate under a running process: new keys verify at once, signing
waits until every verifier can have the new key, retired keys stop verifying."""

from __future__ import annotations

import pytest

from core import keyfiles
from core.errors import Unauthorized
from core.settings import Settings
from core.tokens import ACCESS, TokenCodec
from tests.secret_volume import SecretVolume, keypair


def _private(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


class Clock:
    def __init__(self):
        self.wall = 1_000_000.0
        self.mono = 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    a = keypair()
    private = SecretVolume(tmp_path / "private")
    public = SecretVolume(tmp_path / "public")
    private.write({"private.pem": a[1]})
    public.write({f"{a[0]}.pem": a[2]})
    settings = Settings.from_env({"APP_ENV": "test", "CURSOR_SECRET": "k" * 40})

    def codec(propagation_s=0, signing=True, public_dir=None):
        keys = keyfiles.WatchedKeys(
            private.root / "private.pem" if signing else None,
            (public_dir or public).root,
            propagation_s=propagation_s,
            clock=lambda: clock.wall,
            monotonic=lambda: clock.mono,
        )
        return TokenCodec(settings, keys=keys)

    class World:
        pass

    w = World()
    w.clock, w.a, w.private, w.public, w.codec = clock, a, private, public, codec
    return w


def tick(world, seconds=keyfiles.KEY_CHECK_S):
    world.clock.advance(seconds)


def test_a_new_public_key_verifies_and_is_published_without_a_restart(world):
    # Given a running API signing with key A
    api = world.codec()
    old_token, _ = api.issue(1, "fam", ACCESS)
    b = keypair()
    other_signer = TokenCodec(
        Settings.from_env({"APP_ENV": "test", "CURSOR_SECRET": "k" * 40}),
        _private(b[1]),
    )
    foreign, _ = other_signer.issue(2, "fam", ACCESS)
    with pytest.raises(Unauthorized):
        api.verify(foreign, ACCESS)
    # When key B's public half is added to the mounted Secret
    world.public.write({f"{world.a[0]}.pem": world.a[2], f"{b[0]}.pem": b[2]})
    tick(world)
    # Then both verify and the JWKS serves both, while A still signs
    assert api.verify(foreign, ACCESS).user_id == 2
    assert api.verify(old_token, ACCESS).user_id == 1
    assert {k["kid"] for k in api.jwks()["keys"]} == {world.a[0], b[0]}
    assert api.kid == world.a[0]


def rotate(world, b, active_in: int) -> None:
    """Rotation as `python -m keys rotate` does it: the public Secret first,
    then the private one with the new key, the previous one and the
    activation time."""
    world.public.write({f"{world.a[0]}.pem": world.a[2], f"{b[0]}.pem": b[2]})
    world.private.write(
        {
            "private.pem": b[1],
            "previous.pem": world.a[1],
            "active-after": str(world.clock.wall + active_in).encode(),
        }
    )


def test_signing_switches_only_after_active_after(world):
    api = world.codec()
    # When key B is rotated in, active in 60 s
    b = keypair()
    rotate(world, b, active_in=60)
    tick(world)
    # Then A signs until then, B from then on
    assert api.kid == world.a[0], "B signs before every verifier may have it"
    tick(world, 30)
    assert api.kid == world.a[0]
    tick(world, 31)
    assert api.kid == b[0]
    # and a pod started during the overlap decides the same from the files
    late = world.codec()
    assert late.kid == b[0]


def test_a_pod_started_before_activation_signs_with_the_previous_key(world):
    # Given B rotated in, not active yet
    b = keypair()
    rotate(world, b, active_in=60)
    # When a pod starts now, it signs with A
    fresh = world.codec()
    assert fresh.kid == world.a[0]
    token, _ = fresh.issue(1, "fam", ACCESS)
    # Then a verifier that still has only A's public key accepts its tokens
    stale = SecretVolume(world.private.root.parent / "stale-public")
    stale.write({f"{world.a[0]}.pem": world.a[2]})
    verifier = world.codec(signing=False, public_dir=stale)
    assert verifier.verify(token, ACCESS).user_id == 1


def test_without_active_after_the_propagation_delay_applies(world):
    api = world.codec(propagation_s=100)
    # When the files are rotated by hand (no active-after)
    b = keypair()
    world.public.write({f"{world.a[0]}.pem": world.a[2], f"{b[0]}.pem": b[2]})
    world.private.write({"private.pem": b[1]})  # a hand-made rotation
    tick(world)
    # Then the pod keeps A for the propagation delay, then takes B
    assert api.kid == world.a[0], "keeps the key it signed with before"
    tick(world, 98)  # 100 s since the files changed, 98 since this pod saw them
    assert api.kid == world.a[0]
    tick(world, 2)
    assert api.kid == b[0]


def test_never_signs_with_a_key_no_verifier_has(world):
    api = world.codec()
    # When the private key changes but the public Secret does not (yet)
    b = keypair()
    world.private.write({"private.pem": b[1]})  # public Secret not updated (yet)
    tick(world, 3600)
    # Then the pod keeps signing with A, whose tokens verify
    assert api.kid == world.a[0]
    token, _ = api.issue(1, "fam", ACCESS)
    assert api.verify(token, ACCESS).user_id == 1


def test_a_retired_key_stops_verifying_cached_tokens_included(world):
    # Given B signing and A still published, a token of A verified (cached)
    b = keypair()
    world.public.write({f"{world.a[0]}.pem": world.a[2], f"{b[0]}.pem": b[2]})
    world.private.write({"private.pem": b[1], "previous.pem": world.a[1]})
    api = world.codec()
    assert api.kid == b[0]
    old_signer = TokenCodec(
        Settings.from_env({"APP_ENV": "test", "CURSOR_SECRET": "k" * 40}),
        _private(world.a[1]),
    )
    old, _ = old_signer.issue(1, "fam", ACCESS)
    assert api.verify(old, ACCESS).user_id == 1  # cached now
    # When A's public key is retired
    world.public.write({f"{b[0]}.pem": b[2]})
    tick(world)
    # Then that token no longer verifies
    with pytest.raises(Unauthorized):
        api.verify(old, ACCESS)


def test_a_broken_file_keeps_the_last_good_keys(world):
    api = world.codec()
    # When the public keys file turns to nonsense
    world.public.write({f"{world.a[0]}.pem": b"-----BEGIN nonsense"})
    tick(world)
    # Then the last good keys still sign and verify
    token, _ = api.issue(1, "fam", ACCESS)
    assert api.verify(token, ACCESS).user_id == 1
    assert api.kid == world.a[0]
