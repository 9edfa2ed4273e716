"""Which address is the client's, given the peer and X-Forwarded-For."""

from __future__ import annotations

import pytest

from api.clientip import ClientAddress
from core.settings import ConfigError

PROXIES = ClientAddress(("10.0.0.0/8", "::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "1.2.3.4", "203.0.113.5"),  # untrusted peer: header ignored
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.9, 10.4.0.1", "198.51.100.9"),
        ("10.0.0.2", "10.9.9.9, 10.8.8.8", "10.9.9.9"),  # all ours: the first
        ("10.0.0.2", "not-an-ip, 10.8.8.8", "10.8.8.8"),
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("::ffff:10.0.0.2", "198.51.100.9", "198.51.100.9"),
    ],
)
def test_client_address(peer, forwarded, client):
    assert PROXIES.of(peer, forwarded) == client


def test_a_bad_proxy_network_is_a_config_error():
    with pytest.raises(ConfigError):
        ClientAddress(("10.0.0.0/33",))
