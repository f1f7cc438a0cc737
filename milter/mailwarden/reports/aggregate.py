"""Aggregate reports (RFC 7489 section 7.2 and Appendix C): intervals, grouping, XML, names.

Pure: rows in, report bytes and names out.

Intervals are aligned to UTC hours and to the day: the length is ri= rounded down to an hour
count that divides 24 (1, 2, 3, 4, 6, 8, 12 or 24 hours), at least one hour and at most a day,
so a domain gets at least one report a day whatever its ri= says.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple
from xml.etree import ElementTree as ET

from mailwarden.dmarc.result import Override
from mailwarden.reports.row import Row

HOUR = 3600
DAY = 86400
_DIVISORS = (24, 12, 8, 6, 4, 3, 2, 1)

# What each override means, for the <comment> beside its RFC 7489 PolicyOverrideType.
COMMENTS = {
    "testing": "t=y: the domain owner is testing",
    "report_only": "report mode",
    "exempt_network": "exempt client network",
    "exempt_sender_domain": "exempt sender domain",
    "exempt_recipient": "exempt recipient",
    "from_header": "not exactly one From address",
    "arc": "arc",  # a trusted sealer's ARC chain passed ([arc] trusted_sealers)
}


def override_reason(override: str) -> tuple[str, str] | None:
    """(PolicyOverrideType, comment) of a recorded override; None for none. An override this
    version does not know (recorded by a newer one) is "other", named in the comment."""
    if not override:
        return None
    try:
        return Override(override).report_type, COMMENTS.get(override, "")
    except ValueError:
        return "other", override


def interval_length(ri: int) -> int:
    """Seconds per report for a record's ri=: a divisor of a day, in whole hours."""
    hours = max(1, min(24, ri // HOUR))
    return next(d for d in _DIVISORS if d <= hours) * HOUR


def interval_start(when: int, length: int) -> int:
    return when - when % length


@dataclass(frozen=True)
class Metadata:
    org_name: str
    email: str
    extra_contact_info: str
    receiver: str  # the receiver domain, in names and Subjects


@dataclass(frozen=True)
class Report:
    domain: str
    begin: int
    end: int  # exclusive; the XML and the file name show end - 1, the last second covered
    report_id: str
    xml: bytes
    count: int  # messages

    def filename(self, receiver: str) -> str:
        """RFC 7489 section 7.2.1.1: receiver!policy-domain!begin!end!unique-id, gzipped XML."""
        return f"{receiver}!{self.domain}!{self.begin}!{self.end - 1}!{self.report_id}.xml.gz"

    def subject(self, receiver: str) -> str:
        return f"Report Domain: {self.domain} Submitter: {receiver} Report-ID: <{self.report_id}>"

    def gzipped(self) -> bytes:
        return gzip.compress(self.xml, mtime=0)


def report_id(receiver: str, domain: str, begin: int) -> str:
    """The same report always gets the same id, on every host and every retry."""
    digest = hashlib.sha256(f"{receiver}!{domain}!{begin}".encode()).hexdigest()
    return f"{begin}.{digest[:16]}"


class Group(NamedTuple):
    """What RFC 7489 section 7.2.1.1 groups rows by; one <record> each, with a count."""

    source_ip: str
    disposition: str
    dkim_aligned: str
    spf_aligned: str
    override: tuple[str, str] | None  # (PolicyOverrideType, comment)
    header_from: str
    envelope_from: str
    envelope_to: str
    dkim: tuple[tuple[str, str, str], ...]
    spf: tuple[str, str, str]  # domain, scope, result


GROUP_KEY = ("source_ip", "disposition", "dkim_aligned", "spf_aligned", "override", "from_domain",
             "envelope_from", "envelope_to", "dkim", "spf_domain", "spf_scope", "spf_result")
"""The Row fields a Group is made of: the store counts rows by these (Store.grouped)."""


def group(rows: Sequence[Row], counts: Sequence[int] | None = None) -> list[tuple[Group, int]]:
    """Rows with the same source IP, disposition, alignment, override, identifiers and DKIM/SPF
    results counted together, in order of first appearance. `counts`: how many messages each
    row stands for (1 each by default)."""
    total: Counter[Group] = Counter()
    for row, count in zip(rows, counts if counts is not None else [1] * len(rows), strict=True):
        total[_group_of(row)] += count
    return list(total.items())


def _group_of(row: Row) -> Group:
    return Group(row.source_ip, row.disposition, row.dkim_aligned, row.spf_aligned,
                 override_reason(row.override),
                 row.from_domain, row.envelope_from, row.envelope_to, row.dkim,
                 (row.spf_domain, row.spf_scope, row.spf_result))


def build(rows: Sequence[Row], domain: str, begin: int, end: int, meta: Metadata,
          counts: Sequence[int] | None = None, published: Row | None = None) -> Report:
    """The report of `rows` (all of one policy domain, begin <= time < end), each standing for
    `counts` messages (1 each by default). The published policy shown is `published`'s, by
    default the latest row's."""
    latest = published if published is not None else max(rows, key=lambda r: r.time)
    groups = group(rows, counts)
    rid = report_id(meta.receiver, domain, begin)
    root = ET.Element("feedback")
    _text(root, "version", "1.0")
    md = ET.SubElement(root, "report_metadata")
    _text(md, "org_name", meta.org_name)
    _text(md, "email", meta.email)
    if meta.extra_contact_info:
        _text(md, "extra_contact_info", meta.extra_contact_info)
    _text(md, "report_id", rid)
    dr = ET.SubElement(md, "date_range")
    _text(dr, "begin", str(begin))
    _text(dr, "end", str(end - 1))
    pp = ET.SubElement(root, "policy_published")
    for name, value in (("domain", domain), ("adkim", latest.adkim), ("aspf", latest.aspf),
                        ("p", latest.p), ("sp", latest.sp or latest.p), ("pct", str(latest.pct)),
                        ("fo", latest.fo or "0")):
        _text(pp, name, value)
    for key, count in groups:
        _record(root, key, count)
    ET.indent(root)
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
    return Report(domain, begin, end, rid, xml, sum(n for _, n in groups))


def _record(root: ET.Element, g: Group, count: int) -> None:
    rec = ET.SubElement(root, "record")
    row = ET.SubElement(rec, "row")
    _text(row, "source_ip", g.source_ip)
    _text(row, "count", str(count))
    pe = ET.SubElement(row, "policy_evaluated")
    _text(pe, "disposition", g.disposition)
    _text(pe, "dkim", g.dkim_aligned)
    _text(pe, "spf", g.spf_aligned)
    if g.override:
        reason = ET.SubElement(pe, "reason")
        _text(reason, "type", g.override[0])
        if g.override[1]:
            _text(reason, "comment", g.override[1])
    ids = ET.SubElement(rec, "identifiers")
    if g.envelope_to:
        _text(ids, "envelope_to", g.envelope_to)
    _text(ids, "envelope_from", g.envelope_from)
    _text(ids, "header_from", g.header_from)
    auth = ET.SubElement(rec, "auth_results")
    for d, s, result in g.dkim:
        sig = ET.SubElement(auth, "dkim")
        _text(sig, "domain", d)
        if s:
            _text(sig, "selector", s)
        _text(sig, "result", result)
    spf = ET.SubElement(auth, "spf")
    for name, value in zip(("domain", "scope", "result"), g.spf, strict=True):
        _text(spf, name, value)


def _text(parent: ET.Element, name: str, value: str) -> None:
    ET.SubElement(parent, name).text = value
