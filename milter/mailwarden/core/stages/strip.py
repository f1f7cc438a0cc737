"""Delete privacy-leaking headers from outbound mail (Received, User-Agent, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import EMPTY, Outcome, StageResult
from mailwarden.core.edits import delete_all
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase

DEFAULT_STRIP = ("Received", "User-Agent", "X-Mailer", "X-Originating-IP")


@dataclass(frozen=True, slots=True)
class Strip:
    headers: tuple[str, ...] = DEFAULT_STRIP
    name: str = "strip"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.OUTBOUND and bool(self.headers)

    def run(self, tx: Transaction, outcome: Outcome) -> StageResult:
        edits = delete_all(tx.message.headers, self.headers)
        return StageResult(edits=edits) if edits else EMPTY
