"""SPF (RFC 7208) for inbound mail at MAIL FROM: the MAIL FROM identity, and HELO.

RFC 7208 section 2.3 lets the HELO identity be checked on its own; section 2.4 uses it in place
of MAIL FROM for the null sender (bounces). The result feeds DMARC and the A-R header; rejecting
on fail is optional (550 5.7.23, RFC 7372) so that by default DMARC alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailwarden.core.auth import SpfHelo, SpfResult, SpfScope, SpfStatus
from mailwarden.core.decisions import OutcomeView, StageResult, Verdict
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.core.ports import Resolver
from mailwarden.spf.query import KeptSpf


@dataclass(slots=True)
class SpfCheck:
    resolver: Resolver
    check_helo: bool = True
    reject_on_fail: bool = False
    reject_helo_fail: bool = False
    lookup_time: float = 20.0
    name: str = "spf"
    phase: Phase = Phase.ENVELOPE
    kept: KeptSpf = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Results kept while their DNS answers stay the same: for this configuration's life.
        self.kept = KeptSpf(self.resolver, self.lookup_time)

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        conn = tx.connection
        ip = conn.client_ip.strip("[]").removeprefix("IPv6:")
        if not ip:
            return StageResult(notes=("spf: no client address, not checked",))
        sender = tx.envelope.sender
        helo_result: SpfResult | None = None
        if self.check_helo or not sender:
            helo_result = self.kept.check(ip, "", conn.helo, SpfScope.HELO)
        if sender:
            result = self.kept.check(ip, sender, conn.helo, SpfScope.MAILFROM)
        else:
            assert helo_result is not None
            result = helo_result
        facts = Facts(result)
        if helo_result is not None:
            facts.update([SpfHelo(helo_result)])
        verdict = None
        if self.reject_helo_fail and helo_result is not None and helo_result.result is SpfStatus.FAIL:
            verdict = _reject(helo_result)
        elif self.reject_on_fail and result.result is SpfStatus.FAIL:
            verdict = _reject(result)
        note = f"spf={result.result} {result.identity}={result.domain} ip={ip}"
        return StageResult(verdict=verdict, facts=facts, notes=(note,))


def _reject(result: SpfResult) -> Verdict:
    # The explanation may come from the sender's exp= record: keep it short, printable ASCII.
    why = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in result.explanation)[:200]
    text = f"SPF validation failed for {result.domain}" + (f": {why}" if why else "")
    return Verdict.reject("550", "5.7.23", text)


