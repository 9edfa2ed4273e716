"""The client's address, trusting ``X-Forwarded-For`` only from our own proxies.

Each proxy appends the address it received the request from, so the header is
read right to left: entries added by trusted proxies are skipped and the first
untrusted one is the client. Everything left of it was written by the client
and is ignored; a direct peer that is not a trusted proxy is the client itself,
whatever the header says, so nobody can spoof their way around a limit.
"""

from __future__ import annotations

import ipaddress

from core.settings import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(raw: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class ClientAddress:
    def __init__(self, trusted_proxies: tuple[str, ...]):
        try:
            self._networks = [
                ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies
            ]
        except ValueError as ex:
            raise ConfigError(f"TRUSTED_PROXIES: {ex}") from None

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def of(self, remote_addr: str | None, forwarded_for: str | None) -> str:
        """The client address for a peer ``remote_addr`` and its X-Forwarded-For."""
        peer = _parse(remote_addr or "")
        if peer is None:
            return remote_addr or "unknown"
        client = peer
        if forwarded_for and self._trusted(peer):
            for hop in reversed(forwarded_for.split(",")):
                address = _parse(hop)
                if address is None:
                    break  # garbage only a client writes: stop at the last good hop
                client = address
                if not self._trusted(address):
                    break
        return str(client)

    def https(self, scheme: str, remote_addr: str | None, forwarded_proto) -> bool:
        """Whether the client reached us over https: directly, or per the
        X-Forwarded-Proto of a trusted proxy (its first hop: the client's)."""
        if scheme == "https":
            return True
        peer = _parse(remote_addr or "")
        if not forwarded_proto or peer is None or not self._trusted(peer):
            return False
        return forwarded_proto.split(",")[0].strip().lower() == "https"
