"""header_checks on the top-level headers; the six MIME headers among them go to mime_header_checks.

Runs at end of headers, so a REJECT or DISCARD never waits for the body. Headers are checked in
message order, each class's first match wins, exactly as cleanup(8) does before the milter.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import OutcomeView, StageResult
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.mime import MIME_HEADERS
from mailwarden.rules.stages.common import DEFAULT_OPTIONS, RuleOptions, result, start


@dataclass(frozen=True, eq=False)
class TopHeaderChecks:
    holder: RuleSetHolder
    options: RuleOptions = DEFAULT_OPTIONS
    name: str = "header_checks"
    phase: Phase = Phase.HEADERS

    def applies(self, tx: Transaction) -> bool:
        return True

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        session = start(self.holder, tx, outcome)
        pos = 0
        while pos < len(session.headers) and not session.stopped:
            name = session.headers[pos].name.strip().lower()
            klass = "mime_header_checks" if name in MIME_HEADERS else "header_checks"
            pos += session.check_header(klass, pos)
        return result(session, self.options)
