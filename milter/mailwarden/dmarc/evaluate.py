"""DMARC evaluation (RFC 7489 section 6.6, RFC 9989): from the author domain, the DKIM and SPF
results and the discovered record to a result and the policy that applies.

Pure apart from the Resolver: the policy lookup, the existence check for np= and, in tree-walk
mode, Organizational Domains for relaxed alignment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from publicsuffixlist import PublicSuffixList

from mailwarden.core.auth import DkimResult, SpfResult
from mailwarden.core.ports import Random, Resolver, normalize_name
from mailwarden.dmarc.discovery import Discovered, discover_psl, discover_walk, walk_org_domain
from mailwarden.dmarc.psl import org_domain
from mailwarden.dmarc.record import DmarcRecord
from mailwarden.dmarc.result import DmarcResult
from mailwarden.errors import DnsTempError

WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


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
            return DmarcResult("temperror", domain, disposition="none", reason=str(exc))
        if found.status != "found" or found.record is None:
            result = "permerror" if found.status == "permerror" else "none"
            return DmarcResult(result, domain, org_domain=found.org_domain,
                               policy_domain=found.policy_domain, reason=found.reason)
        record = found.record
        try:
            org_of = self._org_function(domain, found)
            dkim_ok = any(
                sig.result == "pass" and aligned(domain, sig.domain, record.adkim, org_of) for sig in dkim
            )
            spf_ok = spf is not None and spf.result == "pass" and aligned(
                domain, spf.domain, record.aspf, org_of)
            policy = self._policy(domain, found, record)
        except DnsTempError as exc:
            return DmarcResult("temperror", domain, reason=str(exc), org_domain=found.org_domain)
        if not (dkim_ok or spf_ok):
            unsure = _unsure_identifiers(domain, record, org_of, dkim, spf)
            if unsure:
                # A temporary failure of an identifier that would have aligned is not a fail: the
                # sender retries (RFC 7489 leaves this open; a 5xx here would lose mail for good).
                return DmarcResult("temperror", domain, policy=policy, org_domain=found.org_domain,
                                   policy_domain=found.policy_domain, published=record.p, record=record,
                                   reason="temporary DNS failure checking " + ", ".join(unsure))
        base = DmarcResult(
            "pass" if dkim_ok or spf_ok else "fail",
            domain,
            policy=policy,
            dkim_aligned="pass" if dkim_ok else "fail",
            spf_aligned="pass" if spf_ok else "fail",
            org_domain=found.org_domain,
            policy_domain=found.policy_domain,
            published=record.p,
            reason="; ".join(record.problems),
            record=record,
        )
        if base.result == "pass" or policy == "none":
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

    def _policy(self, domain: str, found: Discovered, record: DmarcRecord) -> str:
        if found.policy_domain == domain:
            return record.p
        if record.np and not domain_exists(self.resolver, domain):
            return record.nonexistent_policy()
        return record.subdomain_policy()

    def _sampled(self, result: DmarcResult, record: DmarcRecord) -> DmarcResult:
        """The policy to apply: one step weaker when not sampled (pct, RFC 7489 section 6.6.4) or
        when the owner is testing (t=y, RFC 9989, which ignores pct)."""
        policy = result.policy
        if self.tree_walk:
            if record.t == "y":
                return replace(result, disposition=WEAKER[policy], override="testing")
            return replace(result, disposition=policy)
        if record.pct < 100:
            draw = (self.random() if self.random is not None else 0.0) * 100
            if draw >= record.pct:
                return replace(result, disposition=WEAKER[policy], override="sampled_out")
        return replace(result, disposition=policy)


def _unsure_identifiers(domain: str, record: DmarcRecord, org_of: Callable[[str], str],
                        dkim: Sequence[DkimResult], spf: SpfResult | None) -> list[str]:
    """The aligned identifiers whose check failed temporarily (DKIM key or SPF record lookups)."""
    unsure = [f"dkim d={sig.domain} s={sig.selector}" for sig in dkim
              if sig.result == "temperror" and aligned(domain, sig.domain, record.adkim, org_of)]
    if spf is not None and spf.result == "temperror" and aligned(domain, spf.domain, record.aspf, org_of):
        unsure.append(f"spf {spf.identity}={spf.domain}")
    return unsure


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
