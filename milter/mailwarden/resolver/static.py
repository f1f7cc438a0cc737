"""Answer every DNS query from RFC 1035 master files, as a recursive resolver would: for tests
and dry-run.

A file holds either names of many unrelated domains, written as absolute names, or a normal
BIND zone ($ORIGIN, $TTL, relative names, SOA, NS). An SOA may stand at any name, so several
zones may share a file. A name that is absent, with nothing below it, is NXDOMAIN; a name
present without the type, or one with names below it only (an empty non-terminal, RFC 8020),
is NODATA. A wildcard (`*.example.com.`) answers for names below its parent that do not exist
(RFC 4592). As in BIND, a name with a CNAME holds no other data, and one CNAME only.

CNAMEs are followed for every query type except CNAME (RFC 1034 sections 3.6.2 and 4.3.2,
RFC 2181 section 10.1): the answer carries the queried name, the final name's rcode and its
records, as the live resolver returns them. A chain longer than MAX_CNAME_CHAIN or a loop is a
temporary error (DnsTempError), as a recursive resolver answers SERVFAIL for it and the live
resolver then raises the same. We follow at most 8 CNAMEs; Unbound follows 11, BIND and
dnspython 16: real chains are one or two long.

Failures are written as comments the zone parser ignores, with absolute names:

    ;! TIMEOUT _dmarc.slow.example. TXT      (TYPE optional: every type)
    ;! SERVFAIL broken.example.

A marker applies wherever its name is met: asked for, or reached through a CNAME chain (with
the type of the query, since that is what a resolver asks the target for).

Queries are recorded in `queries` only for a zone made with `record_queries=True` (tests that
count lookups), so `serve --zone` keeps no growing list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import dns.exception
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tokenizer
import dns.zonefile

from mailwarden.core.ports import DnsAnswer, Rcode, normalize_name
from mailwarden.errors import ConfigError, DnsTempError

_FAULT = re.compile(r"^\s*;!\s*(TIMEOUT|SERVFAIL)\s+(\S+)(?:\s+(\S+))?\s*$", re.M)

MAX_CNAME_CHAIN = 8
"""CNAMEs followed for one query; one more is a temporary error, as is a loop."""

_Records = tuple[tuple[str | bytes, ...], int]


class StaticZone:
    def __init__(self, record_queries: bool = False) -> None:
        self._records: dict[tuple[str, str], _Records] = {}
        self._names: set[str] = set()
        self._faults: dict[tuple[str, str], str] = {}
        self._queries: list[tuple[str, str]] | None = [] if record_queries else None

    @property
    def queries(self) -> list[tuple[str, str]]:
        """Every (name, type) asked, in order; only for a zone made with record_queries=True."""
        if self._queries is None:
            raise AttributeError("StaticZone records queries only when made with record_queries=True")
        return self._queries

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], record_queries: bool = False) -> StaticZone:
        zone = cls(record_queries)
        for path in paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError([f"dns.zones: {path}: cannot read: {exc.strerror}"]) from None
            zone.add_text(text, str(path))
        return zone

    @classmethod
    def from_text(cls, text: str, record_queries: bool = False) -> StaticZone:
        zone = cls(record_queries)
        zone.add_text(text, "(text)")
        return zone

    def add_text(self, text: str, source: str) -> None:
        try:
            rrsets = _read_master_file(text, source)
        except (dns.exception.DNSException, ValueError, TypeError) as exc:
            where = "" if str(exc).startswith(f"{source}:") else f"{source}: "
            raise ConfigError([f"dns.zones: {where}{exc}"]) from None
        for owner, rdtype, records, ttl in rrsets:
            old, _ = self._records.get((owner, rdtype), ((), 0))
            self._records[(owner, rdtype)] = ((*old, *records), ttl)
            self._add_name(owner)
        for kind, name, rdtype in _FAULT.findall(text):
            self._faults[(normalize_name(name), (rdtype or "*").upper())] = kind
            self._add_name(normalize_name(name))
        self._check_cnames(source)

    def _add_name(self, name: str) -> None:
        """A name and every name above it exist (those above as empty non-terminals)."""
        labels = name.split(".")
        for i in range(len(labels)):
            self._names.add(".".join(labels[i:]))

    def _check_cnames(self, source: str) -> None:
        """Across files: a CNAME's owner holds nothing else (within a file the reader checks)."""
        types: dict[str, list[str]] = {}
        for owner, rdtype in self._records:
            types.setdefault(owner, []).append(rdtype)
        for (owner, rdtype), (records, _) in self._records.items():
            if rdtype != "CNAME":
                continue
            if len(records) > 1:
                raise ConfigError([f"dns.zones: {source}: {owner}: more than one CNAME"])
            others = sorted(t for t in types[owner] if t not in _BESIDE_CNAME)
            if others:
                raise ConfigError([f"dns.zones: {source}: {owner}: CNAME and other data ({others[0]})"])

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        key = normalize_name(name)
        rdtype = rdtype.upper()
        if self._queries is not None:
            self._queries.append((key, rdtype))
        return self.chase(key, rdtype)[1]

    def chase(self, name: str, rdtype: str) -> tuple[tuple[tuple[str, str, int], ...], DnsAnswer]:
        """The answer to (name, rdtype), and the CNAMEs followed to it as (owner, target, ttl):
        what a server's answer section holds before the final records."""
        key = normalize_name(name)
        rdtype = rdtype.upper()
        owner, chain = key, list[tuple[str, str, int]]()
        for _ in range(MAX_CNAME_CHAIN + 1):
            self._raise_fault(key, owner, rdtype)
            source = owner if owner in self._names else self._wildcard(owner)
            if source is None:
                return tuple(chain), DnsAnswer(key, rdtype, Rcode.NXDOMAIN)
            found = self._records.get((source, rdtype))
            alias = self._records.get((source, "CNAME"))
            if found is not None or alias is None or rdtype == "CNAME":
                records, ttl = found or ((), 0)
                return tuple(chain), DnsAnswer(key, rdtype, Rcode.NOERROR, records, ttl)
            target = normalize_name(str(alias[0][0]))
            if target == key or any(target == t for _, t, _ in chain):
                raise DnsTempError(key, rdtype, f"CNAME loop at {target}")
            chain.append((owner, target, alias[1]))
            owner = target
        raise DnsTempError(key, rdtype, f"CNAME chain longer than {MAX_CNAME_CHAIN}")

    def _wildcard(self, name: str) -> str | None:
        """The wildcard that answers for an absent name (RFC 4592): `*` below the closest
        existing name above it, if there is one."""
        labels = name.split(".")
        for i in range(1, len(labels)):
            encloser = ".".join(labels[i:])
            if encloser in self._names:
                star = "*." + encloser
                return star if star in self._names else None
        return None

    def _raise_fault(self, key: str, owner: str, rdtype: str) -> None:
        fault = self._faults.get((owner, rdtype)) or self._faults.get((owner, "*"))
        if fault is not None:
            reason = "timed out" if fault == "TIMEOUT" else "SERVFAIL"
            raise DnsTempError(key, rdtype, reason if owner == key else f"{reason} at {owner}")

    def txt(self, name: str) -> list[bytes]:
        return [r for r in self.query(name, "TXT").records if isinstance(r, bytes)]


_BESIDE_CNAME = frozenset({"CNAME", "RRSIG", "NSEC", "NSEC3", "KEY"})
"""RFC 2181 section 10.1 and RFC 4035: the only types a CNAME's owner may also hold."""


class _AnyOwnerSoa(dns.zonefile.RRsetsReaderTransaction):
    """dnspython's reader, except that an SOA may stand at any name, not only at the origin:
    one file may hold several zones, and a zone needs no origin given beside its file. A
    CNAME beside other data, or a second CNAME, is an error, as in BIND."""

    def __init__(self, manager: dns.zonefile.RRSetsReaderManager) -> None:
        super().__init__(manager, True, False)  # type: ignore[no-untyped-call]
        # dnspython finds a name's data by scanning every RRset read so far, for every record
        # (quadratic: minutes for a 40,000-record zone); an index by name keeps it linear.
        self._by_name: dict[dns.name.Name, list[tuple[dns.name.Name, int, int]]] = {}

    def _put_rdataset(self, name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> None:
        key = (name, rdataset.rdtype, rdataset.covers)
        if key not in self.rdatasets:
            self._by_name.setdefault(name, []).append(key)
        self.rdatasets[key] = rdataset

    def _get_node(self, name: dns.name.Name) -> dns.node.Node | None:
        rdatasets = [self.rdatasets[k] for k in self._by_name.get(name, ()) if k in self.rdatasets]
        if not rdatasets:
            return None
        node = dns.node.Node()  # type: ignore[no-untyped-call]
        node.rdatasets = rdatasets
        return node

    def _name_exists(self, name: dns.name.Name) -> bool:
        return self._get_node(name) is not None

    def add(self, *args: object) -> None:
        name, ttl, rdata = args
        assert isinstance(name, dns.name.Name) and isinstance(ttl, int)
        assert isinstance(rdata, dns.rdata.Rdata)
        key = (name, rdata.rdtype, rdata.covers)
        if rdata.rdtype == dns.rdatatype.SOA:
            if key not in self.rdatasets:
                self._put_rdataset(name, dns.rdataset.from_rdata(ttl, rdata))
            return
        cname = self.rdatasets.get((name, dns.rdatatype.CNAME, dns.rdatatype.NONE))
        if rdata.rdtype == dns.rdatatype.CNAME and cname is not None and rdata not in cname:
            raise _BadData(f"{normalize_name(name.to_text())}: more than one CNAME")
        try:
            super().add(*args)
        except dns.zonefile.CNAMEAndOtherData:
            raise _BadData(f"{normalize_name(name.to_text())}: CNAME and other data") from None


class _BadData(ValueError):
    """Named by owner: dnspython's line number for it would be the next line's."""


class _Manager(dns.zonefile.RRSetsReaderManager):
    def writer(self, replacement: bool = False) -> _AnyOwnerSoa:
        return _AnyOwnerSoa(self)


def _read_master_file(text: str, source: str) -> list[tuple[str, str, list[str | bytes], int]]:
    """(owner, type, records, ttl) of every RRset; relative names before any $ORIGIN are
    relative to the root. TXT records are their character-strings joined, as raw bytes."""
    manager = _Manager(dns.name.root, False, dns.rdataclass.IN)
    with manager.writer(True) as txn:
        reader = dns.zonefile.Reader(dns.tokenizer.Tokenizer(text, source), dns.rdataclass.IN, txn)
        reader.read()
    out: list[tuple[str, str, list[str | bytes], int]] = []
    for rrset in manager.rrsets:
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.rdtype == dns.rdatatype.TXT:
            records: list[str | bytes] = [b"".join(rdata.strings) for rdata in rrset]
        else:
            records = [rdata.to_text() for rdata in rrset]
        out.append((normalize_name(rrset.name.to_text()), rdtype, records, rrset.ttl))
    return out
