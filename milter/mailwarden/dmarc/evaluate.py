"""DMARC evaluation (RFC 7489 section 6.6, RFC 9989): from the author domain, the DKIM and SPF
results and the discovered record to a result and the policy that applies.

Pure apart from the Resolver: the policy lookup, the existence check for np= and, in tree-walk
mode, Organizational Domains for relaxed alignment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from publicsuffixlist import PublicSuffixList

from mailwarden.core.auth import DkimResult, DkimStatus, SpfResult, SpfStatus
from mailwarden.core.ports import Random, Resolver, normalize_name
from mailwarden.dmarc.discovery import Discovered, discover_psl, discover_walk, walk_org_domain
from mailwarden.dmarc.psl import org_domain
from mailwarden.dmarc.record import DmarcRecord
from mailwarden.dmarc.result import (
    AlignedIdentifier,
    Alignment,
    Disposition,
    DmarcResult,
    DmarcStatus,
    Override,
    Policy,
)
from mailwarden.errors import DnsTempError

WEAKER = {Policy.REJECT: Disposition.QUARANTINE, Policy.QUARANTINE: Disposition.NONE,
          Policy.NONE: Disposition.NONE}


@dataclass(frozen=True, slots=True)
class Evaluator:
    resolver: Resolver
    psl: PublicSuffixList
    tree_walk: bool = False
    random: Random | None = None

    def evaluate(self, domain: str, dkim: Sequence[DkimResult], spf: SpfResult | None) -> DmarcResult:
        """The DMARC result for author domain `domain`; disposition is the policy after pct/t=."""
        try:
            found = discover_walk(self.resolver, domain) if self.tree_walk else discover_psl(
                self.resolver, domain, self.psl)
        except DnsTempError as exc:
            return DmarcResult(DmarcStatus.TEMPERROR, domain, reason=str(exc))
        if found.status != "found" or found.record is None:
            result = DmarcStatus.PERMERROR if found.status == "permerror" else DmarcStatus.NONE
            return DmarcResult(result, domain, org_domain=found.org_domain,
                               policy_domain=found.policy_domain, reason=found.reason)
        record = found.record
        try:
            org_of = self._org_function(domain, found)
            identifiers = _identifiers(domain, record, org_of, dkim, spf, (DkimStatus.PASS, SpfStatus.PASS))
            dkim_ok = any(i.aligned for i in identifiers if i.method == "dkim")
            spf_ok = any(i.aligned for i in identifiers if i.method == "spf")
            policy = self._policy(domain, found, record)
            if not (dkim_ok or spf_ok):
                identifiers = _identifiers(domain, record, org_of, dkim, spf,
                                           (DkimStatus.TEMPERROR, SpfStatus.TEMPERROR))
        except DnsTempError as exc:
            return DmarcResult(DmarcStatus.TEMPERROR, domain, reason=str(exc), org_domain=found.org_domain)
        if not (dkim_ok or spf_ok):
            unsure = [i.label() for i in identifiers if i.aligned]
            if unsure:
                # A temporary failure of an identifier that would have aligned is not a fail: the
                # sender retries (RFC 7489 leaves this open; a 5xx here would lose mail for good).
                return DmarcResult(DmarcStatus.TEMPERROR, domain, policy=policy, org_domain=found.org_domain,
                                   policy_domain=found.policy_domain, published=record.p,
                                   reason="temporary DNS failure checking " + ", ".join(unsure),
                                   record=record, identifiers=identifiers)
        base = DmarcResult(
            DmarcStatus.PASS if dkim_ok or spf_ok else DmarcStatus.FAIL,
            domain,
            policy=policy,
            dkim_aligned=Alignment.PASS if dkim_ok else Alignment.FAIL,
            spf_aligned=Alignment.PASS if spf_ok else Alignment.FAIL,
            org_domain=found.org_domain,
            policy_domain=found.policy_domain,
            published=record.p,
            reason="; ".join(record.problems),
            record=record,
            identifiers=identifiers,
        )
        if base.result is DmarcStatus.PASS or policy is Policy.NONE:
            return base
        return self._sampled(base, record)

    def _org_function(self, domain: str, found: Discovered) -> Callable[[str], str]:
        if not self.tree_walk:
            return lambda d: org_domain(d, self.psl)
        cache = {domain: found.org_domain}

        def org(d: str) -> str:
            d = normalize_name(d)
            if d not in cache:
                cache[d] = walk_org_domain(self.resolver, d)
            return cache[d]
        return org

    def _policy(self, domain: str, found: Discovered, record: DmarcRecord) -> Policy:
        if found.policy_domain == domain:
            return Policy(record.p)
        if record.np and not domain_exists(self.resolver, domain):
            return Policy(record.nonexistent_policy())
        return Policy(record.subdomain_policy())

    def _sampled(self, result: DmarcResult, record: DmarcRecord) -> DmarcResult:
        """The policy to apply: one step weaker when not sampled (pct, RFC 7489 section 6.6.4) or
        when the owner is testing (t=y, RFC 9989, which ignores pct)."""
        policy = result.policy or Policy.NONE
        if self.tree_walk:
            if record.t == "y":
                return replace(result, disposition=WEAKER[policy], override=Override.TESTING)
            return replace(result, disposition=Disposition(policy.value))
        if record.pct < 100:
            draw = (self.random() if self.random is not None else 0.0) * 100
            if draw >= record.pct:
                return replace(result, disposition=WEAKER[policy], override=Override.SAMPLED_OUT)
        return replace(result, disposition=Disposition(policy.value))


def _identifiers(domain: str, record: DmarcRecord, org_of: Callable[[str], str],
                 dkim: Sequence[DkimResult], spf: SpfResult | None,
                 counted: tuple[DkimStatus, SpfStatus]) -> tuple[AlignedIdentifier, ...]:
    """Every signature and the SPF result, each with whether it aligns with `domain`.

    Alignment is worked out only for the `counted` results (in tree-walk mode it costs DNS
    queries): a pass, or when nothing passed aligned, a temporary error."""
    found = [AlignedIdentifier("dkim", sig.domain, sig.result.value,
                               sig.result in counted and aligned(domain, sig.domain, record.adkim, org_of),
                               selector=sig.selector) for sig in dkim]
    if spf is not None:
        spf_aligned = spf.result in counted and aligned(domain, spf.domain, record.aspf, org_of)
        found.append(AlignedIdentifier("spf", spf.domain, spf.result.value, spf_aligned,
                                       scope=spf.identity.value))
    return tuple(found)


def aligned(author: str, identifier: str, mode: str, org_of: Callable[[str], str]) -> bool:
    """Identifier alignment (RFC 7489 section 3.1): strict is equality, relaxed equal org domains."""
    a = author.strip().rstrip(".").lower()
    b = identifier.strip().rstrip(".").lower()
    if not a or not b:
        return False
    if a == b:
        return True
    return mode != "s" and org_of(a) == org_of(b)


def domain_exists(resolver: Resolver, domain: str) -> bool:
    """RFC 9091 section 2.1: a domain does not exist when A, AAAA and MX all give NXDOMAIN."""
    return any(resolver.query(domain, rdtype).exists for rdtype in ("A", "AAAA", "MX"))
