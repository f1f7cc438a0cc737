"""Apply the DMARC disposition: reject, hold (or mark) for quarantine, tempfail.

Runs after the A-R header stage, so a held message carries the header when it is released.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import EMPTY, AddHeader, OutcomeView, StageResult, Verdict
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.dmarc.result import Disposition, DmarcResult

FROM_TEXT = "not exactly one From address"


@dataclass(slots=True)
class DmarcEnforce:
    reject_text: str = "rejected by DMARC policy for {domain}"
    hold: bool = True
    quarantine_header: str = "X-Mailwarden-Quarantine"
    name: str = "dmarc-enforce"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        result = outcome.facts.get(DmarcResult)
        if result is None:
            return EMPTY
        domain = result.domain
        match result.disposition:
            case Disposition.REJECT:
                text = FROM_TEXT if not domain else self.reject_text.format(domain=domain)
                return StageResult(verdict=Verdict.reject("550", "5.7.1", text))
            case Disposition.QUARANTINE:
                why = f"quarantined by DMARC policy for {domain}" if domain else f"quarantined: {FROM_TEXT}"
                if self.hold:
                    return StageResult(verdict=Verdict.quarantine(why))
                return StageResult(edits=(AddHeader(self.quarantine_header, " " + why),))
            case Disposition.TEMPFAIL:
                text = f"DMARC policy for {domain} unavailable, try again later"
                return StageResult(verdict=Verdict.tempfail(text, code="451", dsn="4.7.5"))
        return EMPTY
