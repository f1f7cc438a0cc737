"""Which way a message goes: outbound mail is signed and stripped, inbound mail is verified."""

from __future__ import annotations

import functools
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
    addr = _address(ip)
    return addr is not None and any(addr in net for net in networks)


@functools.lru_cache(maxsize=4096)
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parsed once per client address seen lately (every message asks, often the same few)."""
    try:
        addr = ipaddress.ip_address(ip.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr
