"""Reject mail loops the way Postfix's hopcount_limit does.

Postfix counts its own Received header, which milters never see, so the message is rejected
when the visible Received headers plus one reach the limit. Decided at end of headers, so the
body is never transferred.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import EMPTY, OutcomeView, StageResult, Verdict
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase

TOO_MANY_HOPS = Verdict.reject("554", "5.4.0", "Error: too many hops")


@dataclass(frozen=True, slots=True)
class Hopcount:
    limit: int = 50
    name: str = "hopcount"
    phase: Phase = Phase.HEADERS

    def applies(self, tx: Transaction) -> bool:
        return self.limit > 0

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        hops = count_received(tx) + 1  # the MTA's own, hidden Received header
        if hops >= self.limit:
            return StageResult(
                verdict=TOO_MANY_HOPS, notes=(f"hopcount exceeded: {hops} hops, limit {self.limit}",)
            )
        return EMPTY


def count_received(tx: Transaction) -> int:
    return sum(1 for h in tx.received_headers if h.name.lower() == "received")
