"""The trusted-forwarder DMARC override: a trusted ARC chain rescues a DMARC failure.

Runs between DMARC evaluation and the A-R header (so its dmarc= clause shows policy.override=arc)
and before enforcement. Only when every condition holds:
- DMARC failed, and its disposition is reject or quarantine;
- the chain passes (RFC 8617 5.2) and the newest ARC-Seal's d= is in [arc] trusted_sealers;
- the earliest ARC-Authentication-Results (i=1, the first ARC hop's own view of the message)
  shows dkim=pass with header.d, or spf=pass with smtp.mailfrom, aligned (relaxed) with the
  From domain, or dmarc=pass for it.
The DMARC result then has disposition none, override `Override.ARC` (aggregate reports:
PolicyOverrideType local_policy) and a reason that says which sealer and first-hop result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import authres
from authres.core import AuthResError

from mailwarden.arc.result import ArcResult
from mailwarden.core.decisions import EMPTY, OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.dmarc.evaluate import aligned
from mailwarden.dmarc.result import Disposition, DmarcResult, DmarcStatus, Override


def first_hop_passes(aar1: str, author: str, org_of: Callable[[str], str]) -> str:
    """Which aligned pass the earliest AAR shows for `author` ("" when none)."""
    _, _, rest = aar1.partition(";")  # drop i=1
    try:
        header = authres.parse_value(rest.strip())
    except AuthResError:  # anything malformed shows no pass
        return ""
    for res in header.results:
        if res.result.lower() != "pass":
            continue
        props = {f"{p.type}.{p.name}".lower(): p.value for p in res.properties}
        method = res.method.lower()
        if method == "dmarc" and props.get("header.from", "").lower().rstrip(".") == author:
            return "dmarc=pass"
        if method == "dkim" and aligned(author, props.get("header.d", ""), "r", org_of):
            return f"dkim=pass header.d={props['header.d']}"
        mailfrom = props.get("smtp.mailfrom", "").rpartition("@")[2]
        if method == "spf" and aligned(author, mailfrom, "r", org_of):
            return f"spf=pass smtp.mailfrom={props['smtp.mailfrom']}"
    return ""


@dataclass(frozen=True)
class ArcOverride:
    trusted_sealers: frozenset[str]
    org_of: Callable[[str], str]
    name: str = "arc-override"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        dmarc = outcome.facts.get(DmarcResult)
        arc = outcome.facts.get(ArcResult)
        if dmarc is None or arc is None:
            return EMPTY
        if dmarc.result is not DmarcStatus.FAIL or dmarc.disposition not in (Disposition.REJECT,
                                                                              Disposition.QUARANTINE):
            return EMPTY
        seen, refusal = self.evidence(arc, dmarc.domain)
        if refusal:
            return StageResult(notes=(f"arc-override: not applied: {refusal}",))
        sealer = arc.newest.domain if arc.newest else "-"
        result = replace(dmarc, disposition=Disposition.NONE, override=Override.ARC,
                         reason=f"arc=pass, sealed by {sealer}, first hop {seen}")
        note = (f"arc-override: dmarc=fail for {dmarc.domain} rescued by a trusted ARC chain "
                f"(sealer {sealer}, first hop {seen}); disposition none")
        return StageResult(facts=Facts(result), log=(note,))

    def evidence(self, arc: ArcResult, author: str) -> tuple[str, str]:
        """(what the first hop saw, e.g. "dkim=pass header.d=..."; "") or ("", why not)."""
        if arc.result != "pass" or arc.newest is None:
            return "", f"arc={arc.result}"
        sealer = arc.newest.domain
        if sealer not in self.trusted_sealers:
            return "", f"sealer {sealer} is not in arc.trusted_sealers"
        seen = first_hop_passes(arc.aar1, author, self.org_of)
        if not seen:
            return "", f"the earliest ARC-Authentication-Results shows no aligned pass for {author}"
        return seen, ""
