"""outbound_header_checks: Postfix's smtp_header_checks, on mail leaving through us only.

The shipped privacy pack deletes Received, User-Agent, X-Mailer and X-Originating-IP here. Only
the actions smtp_header_checks knows act (WARN, INFO, REPLACE, PREPEND, STRIP, IGNORE, DUNNO, OK);
the others are logged as unsupported, as Postfix does.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import OutcomeView, StageResult
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.stages.common import DEFAULT_OPTIONS, RuleOptions, result, start


@dataclass(frozen=True, eq=False)
class OutboundHeaderChecks:
    holder: RuleSetHolder
    options: RuleOptions = DEFAULT_OPTIONS
    name: str = "outbound_header_checks"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.OUTBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        session = start(self.holder, tx, outcome, outbound=True)
        if len(session.rules.matchers["outbound_header_checks"]) == 0:
            return result(session, self.options)
        pos = 0
        while pos < len(session.headers):
            pos += session.check_header("outbound_header_checks", pos)
        return result(session, self.options)
