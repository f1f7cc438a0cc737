"""Finding the DMARC policy record and the Organizational Domain of a domain.

Two methods: RFC 7489 (the From domain, then its Organizational Domain from the Public Suffix
List) and RFC 9989 (the DNS Tree Walk: up the tree one label at a time, at most 8 queries; psd=
marks where the Organizational Domain is). Both raise DnsTempError on a DNS failure, which the
caller turns into dmarc=temperror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from publicsuffixlist import PublicSuffixList

from mailwarden.core.ports import Resolver
from mailwarden.dmarc.psl import org_domain
from mailwarden.dmarc.record import DmarcRecord, RecordError, is_dmarc, parse

Status = Literal["found", "none", "permerror"]


@dataclass(frozen=True, slots=True)
class Discovered:
    status: Status
    record: DmarcRecord | None = None
    policy_domain: str = ""  # where the record was found
    org_domain: str = ""
    reason: str = ""


def dmarc_records(resolver: Resolver, domain: str) -> list[bytes]:
    """The TXT records at _dmarc.<domain> that are DMARC records (v=DMARC1 first)."""
    return [t for t in resolver.txt(f"_dmarc.{domain}") if is_dmarc(t)]


def _use(records: list[bytes], where: str, org: str) -> Discovered:
    if len(records) > 1:
        return Discovered("none", None, where, org, f"{len(records)} DMARC records at _dmarc.{where}")
    try:
        return Discovered("found", parse(records[0]), where, org)
    except RecordError as exc:
        return Discovered("permerror", None, where, org, f"_dmarc.{where}: {exc}")


def discover_psl(resolver: Resolver, domain: str, psl: PublicSuffixList) -> Discovered:
    """RFC 7489 section 6.6.3: the From domain's record, else its Organizational Domain's."""
    org = org_domain(domain, psl)
    records = dmarc_records(resolver, domain)
    where = domain
    if not records and org != domain:
        records = dmarc_records(resolver, org)
        where = org
    if not records:
        return Discovered("none", None, "", org, "no DMARC record")
    return _use(records, where, org)


def walk_targets(domain: str) -> list[str]:
    """The names RFC 9989's DNS Tree Walk queries, author domain first: 8 at most."""
    labels = domain.split(".")
    targets = [domain]
    for n in range(min(len(labels) - 1, 7), 0, -1):
        targets.append(".".join(labels[-n:]))
    return targets


def discover_walk(resolver: Resolver, domain: str) -> Discovered:
    """RFC 9989: the first record found walking up is the policy; the psd= tags (or, without
    them, the highest record found) give the Organizational Domain."""
    found: list[tuple[str, list[bytes]]] = []
    for target in walk_targets(domain):
        records = dmarc_records(resolver, target)
        if len(records) == 1:
            found.append((target, records))
        elif len(records) > 1 and target == domain:
            found.append((target, records))  # reported, but never used as a policy
        if len(records) == 1 and _psd(records[0]) in ("y", "n"):
            break
    org = _walk_org(domain, found)
    if not found:
        return Discovered("none", None, "", org, "no DMARC record")
    where, records = found[0]
    if len(records) > 1:
        if len(found) == 1:
            return _use(records, where, org)
        where, records = found[1]
    return _use(records, where, org)


def walk_org_domain(resolver: Resolver, domain: str) -> str:
    """The Organizational Domain of `domain` by the Tree Walk (for relaxed alignment)."""
    found: list[tuple[str, list[bytes]]] = []
    for target in walk_targets(domain):
        records = dmarc_records(resolver, target)
        if len(records) == 1:
            found.append((target, records))
            if _psd(records[0]) in ("y", "n"):
                break
    return _walk_org(domain, found)


def _walk_org(domain: str, found: list[tuple[str, list[bytes]]]) -> str:
    usable = [(t, r[0]) for t, r in found if len(r) == 1]
    if not usable:
        return domain
    target, text = usable[-1]
    psd = _psd(text)
    if psd == "y":
        # The record is a public suffix operator's: the Organizational Domain is one label below.
        if target == domain:
            return domain
        labels = domain.split(".")
        return ".".join(labels[-(len(target.split(".")) + 1):])
    return target


def _psd(text: bytes) -> str:
    try:
        return parse(text).psd
    except RecordError:
        return ""
