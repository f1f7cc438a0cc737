"""The ports the core talks to the outside through. Implementations live outside the core.

A `Resolver` answers DNS queries. NXDOMAIN and NODATA are answers, not errors; a timeout or
SERVFAIL raises `mailwarden.errors.DnsTempError`, which no stage may read as a fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Rcode(StrEnum):
    NOERROR = "NOERROR"
    NXDOMAIN = "NXDOMAIN"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """An answer: `records` in presentation form, except TXT, where each record is the
    concatenation of its character-strings as raw bytes. Empty with NOERROR means NODATA."""

    name: str
    rdtype: str
    rcode: Rcode
    records: tuple[str | bytes, ...] = ()
    ttl: int = 0

    @property
    def exists(self) -> bool:
        return self.rcode is Rcode.NOERROR


class Resolver(Protocol):
    def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look up `name` (absolute or not; case and a trailing dot do not matter)."""
        ...

    def txt(self, name: str) -> list[bytes]:
        """The TXT records of `name`, [] for NXDOMAIN or NODATA."""
        ...


Clock = Callable[[], float]
"""Seconds since the epoch; injected so tests can fix time (DKIM t=/x=)."""

Random = Callable[[], float]
"""A number in [0, 1); injected so DMARC pct sampling is deterministic in tests."""


def normalize_name(name: str) -> str:
    """Lower case, no trailing dot, IDNA A-labels: the key every resolver uses."""
    name = name.strip().rstrip(".").lower()
    if name and not name.isascii():
        name = name.encode("idna").decode("ascii")
    return name
