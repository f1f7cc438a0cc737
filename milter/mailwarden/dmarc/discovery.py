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


def _use(records: list[bytes], where: str, org: str, bis: bool = False) -> Discovered:
    if len(records) > 1:
        return Discovered("none", None, where, org, f"{len(records)} DMARC records at _dmarc.{where}")
    try:
        return Discovered("found", parse(records[0], bis), where, org)
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


def _walk(resolver: Resolver, domain: str) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The single valid DMARC records found walking up from `domain` (longest name first), and
    the names where several records were discarded. Stops at psd=n, or psd=y above `domain`."""
    found: list[tuple[str, bytes]] = []
    several: list[str] = []
    for target in walk_targets(domain):
        records = dmarc_records(resolver, target)
        if len(records) > 1:
            several.append(target)  # all discarded (RFC 9989 section 4.10 step 2)
            continue
        if not records:
            continue
        found.append((target, records[0]))
        psd = _psd(records[0], bis=True)
        if psd == "n" or (psd == "y" and target != domain):
            break
    return found, several


def _walk_org(domain: str, found: list[tuple[str, bytes]]) -> str:
    """RFC 9989 section 4.10.2: psd=n, one label below a psd=y, else the fewest labels."""
    for target, text in found:
        psd = _psd(text, bis=True)
        if psd == "n":
            return target
        if psd == "y" and target != domain:
            return ".".join(domain.split(".")[-(len(target.split(".")) + 1):])
    if found:
        return min(found, key=lambda f: len(f[0].split(".")))[0]
    return domain


def discover_walk(resolver: Resolver, domain: str) -> Discovered:
    """RFC 9989 section 4.10.1: the record of the author domain, else of its Organizational
    Domain, else of its Public Suffix Domain (the highest record found)."""
    found, several = _walk(resolver, domain)
    org = _walk_org(domain, found)
    by_name = dict(found)
    for where in (domain, org):
        if where in by_name:
            return _use([by_name[where]], where, org, bis=True)
    if found:
        where, text = min(found, key=lambda f: len(f[0].split(".")))
        return _use([text], where, org, bis=True)
    if several:
        return Discovered("none", None, "", org, f"several DMARC records at _dmarc.{several[0]}")
    return Discovered("none", None, "", org, "no DMARC record")


def walk_org_domain(resolver: Resolver, domain: str) -> str:
    """The Organizational Domain of `domain` by the Tree Walk (for relaxed alignment)."""
    return _walk_org(domain, _walk(resolver, domain)[0])


def _psd(text: bytes, bis: bool = False) -> str:
    try:
        return parse(text, bis).psd
    except RecordError:
        return ""
