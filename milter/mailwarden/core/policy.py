"""Which way a message goes: outbound mail is signed and stripped, inbound mail is verified."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mailwarden.core.model import Connection, Direction

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class DirectionPolicy:
    originating_daemons: frozenset[str] = frozenset({"ORIGINATING"})
    trusted_networks: tuple[Network, ...] = ()

    @classmethod
    def build(cls, daemons: Iterable[str], networks: Iterable[str]) -> DirectionPolicy:
        return cls(frozenset(daemons), tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def is_trusted(self, ip: str) -> bool:
        return bool(self.trusted_networks) and in_networks(ip, self.trusted_networks)

    def direction(self, conn: Connection) -> Direction:
        """Outbound when SASL-authenticated, on an originating listener, or from a trusted network."""
        if conn.auth_user:
            return Direction.OUTBOUND
        if conn.daemon_name and conn.daemon_name in self.originating_daemons:
            return Direction.OUTBOUND
        if self.is_trusted(conn.client_ip):
            return Direction.OUTBOUND
        return Direction.INBOUND


def in_networks(ip: str, networks: Iterable[Network]) -> bool:
    """Whether `ip` (bare, [bracketed] or IPv6:-prefixed; IPv4-mapped too) is in any network."""
    try:
        addr = ipaddress.ip_address(ip.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)
