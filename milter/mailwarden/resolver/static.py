"""Answer every DNS query from RFC 1035 master files, for tests and dry-run.

One file may hold names of many unrelated domains, written as absolute names; an SOA is
optional. A name that is absent is NXDOMAIN; a name present without the type is NODATA.
Failures are written as comments the zone parser ignores:

    ;! TIMEOUT _dmarc.slow.example. TXT      (TYPE optional: every type)
    ;! SERVFAIL broken.example.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone

from mailwarden.core.ports import DnsAnswer, Rcode, normalize_name
from mailwarden.errors import ConfigError, DnsTempError

# An SOA record, its parenthesized fields possibly over several lines.
_SOA = re.compile(r"^[^;\n]*\sSOA\s[^(;\n]*(?:\([^)]*\))?[^\n]*", re.M | re.I)
_FAULT = re.compile(r"^\s*;!\s*(TIMEOUT|SERVFAIL)\s+(\S+)(?:\s+(\S+))?\s*$", re.M)


class StaticZone:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], tuple[tuple[str | bytes, ...], int]] = {}
        self._names: set[str] = set()
        self._faults: dict[tuple[str, str], str] = {}
        self.queries: list[tuple[str, str]] = []

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> StaticZone:
        zone = cls()
        for path in paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError([f"dns.zones: {path}: cannot read: {exc.strerror}"]) from None
            zone.add_text(text, str(path))
        return zone

    @classmethod
    def from_text(cls, text: str) -> StaticZone:
        zone = cls()
        zone.add_text(text, "(text)")
        return zone

    def add_text(self, text: str, source: str) -> None:
        try:
            try:
                parsed = _parse(text)
            except ValueError as exc:
                if "non-origin SOA" not in str(exc):
                    raise
                # dnspython keeps an SOA only at the zone's origin, which is the root here; the
                # SOA of a real zone file ($ORIGIN example.com., @ SOA ...) answers nothing we ask.
                parsed = _parse(_SOA.sub(lambda m: "\n" * m.group(0).count("\n"), text))
        except (dns.exception.DNSException, ValueError) as exc:
            raise ConfigError([f"dns.zones: {source}: {exc}"]) from None
        for name, node in parsed.nodes.items():
            key = normalize_name(name.to_text())
            self._names.add(key)
            for rdataset in node.rdatasets:
                rdtype = dns.rdatatype.to_text(rdataset.rdtype)
                records: list[str | bytes] = []
                for rdata in rdataset:
                    if rdataset.rdtype == dns.rdatatype.TXT:
                        records.append(b"".join(rdata.strings))
                    else:
                        records.append(rdata.to_text())
                old, _ = self._records.get((key, rdtype), ((), 0))
                self._records[(key, rdtype)] = ((*old, *records), rdataset.ttl)
        for kind, name, rdtype in _FAULT.findall(text):
            self._faults[(normalize_name(name), (rdtype or "*").upper())] = kind
            self._names.add(normalize_name(name))

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        key = normalize_name(name)
        rdtype = rdtype.upper()
        self.queries.append((key, rdtype))
        fault = self._faults.get((key, rdtype)) or self._faults.get((key, "*"))
        if fault is not None:
            raise DnsTempError(key, rdtype, "timed out" if fault == "TIMEOUT" else "SERVFAIL")
        if key not in self._names:
            return DnsAnswer(key, rdtype, Rcode.NXDOMAIN)
        records, ttl = self._records.get((key, rdtype), ((), 0))
        return DnsAnswer(key, rdtype, Rcode.NOERROR, records, ttl)

    def txt(self, name: str) -> list[bytes]:
        return [r for r in self.query(name, "TXT").records if isinstance(r, bytes)]


def _parse(text: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
