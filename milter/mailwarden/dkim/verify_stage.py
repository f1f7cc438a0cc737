"""The DKIM verify stage: every signature's result as a fact for DMARC and the A-R header."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailwarden.core.auth import DkimResult, DkimResults, DkimStatus
from mailwarden.core.decisions import OutcomeView, StageResult, Verdict
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.dkim.verify import Verifier

# OpenDKIM's texts (opendkim.c dkimf_libstatus), so existing log parsers keep working.
_TEXTS = {
    "fail": ("550", "5.7.0", "bad DKIM signature data"),
    "none": ("550", "5.7.0", "no DKIM signature data"),
    "temperror": ("451", "4.7.5", "DKIM key retrieval failed"),
    "permerror": ("550", "5.7.0", "DKIM signature processing failed"),
    "policy": ("550", "5.7.0", "DKIM signature not acceptable by policy"),
}


def summary(results: Sequence[DkimResult]) -> DkimStatus:
    """The one result that decides the action: pass if any signature passes, else the worst."""
    kinds = {r.result for r in results}
    if not results:
        return DkimStatus.NONE
    for kind in (DkimStatus.PASS, DkimStatus.TEMPERROR, DkimStatus.FAIL, DkimStatus.POLICY):
        if kind in kinds:
            return kind
    return DkimStatus.PERMERROR  # neutral counts as unusable


@dataclass(frozen=True)
class DkimVerify:
    verifier: Verifier
    actions: Mapping[str, str]  # summary result -> accept/reject/tempfail/quarantine
    verify_outbound: bool = False
    name: str = "dkim-verify"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.INBOUND or self.verify_outbound

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        # The headers as received: what the signer signed, before our own rules changed any.
        results = self.verifier.verify(tx.received_headers, tx.message.body.chunks)
        notes = [f"dkim {r.result} d={r.domain} s={r.selector} a={r.algorithm}"
                 + (f" bits={r.key_bits}" if r.key_bits else "") + (f": {r.reason}" if r.reason else "")
                 for r in results]
        return StageResult(
            verdict=self._verdict(summary(results)),
            facts=Facts(DkimResults(results)),
            notes=notes,
        )

    def _verdict(self, kind: DkimStatus) -> Verdict | None:
        action = self.actions.get(kind, "accept")
        if kind is DkimStatus.PASS or action == "accept":
            return None  # leave the decision to DMARC and later stages
        code, dsn, text = _TEXTS[kind]
        if action == "reject":
            return Verdict.reject(code if code.startswith("5") else "550", "5.7.0", text)
        if action == "tempfail":
            return Verdict.tempfail(text, "451", dsn if dsn.startswith("4") else "4.7.0")
        return Verdict.quarantine(f"DKIM {kind}: {text}")
