"""What the rule stages share: the per-message rule set snapshot and the pending message effects."""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import OutcomeView, StageResult, Verdict
from mailwarden.core.facts import Facts
from mailwarden.core.model import Transaction
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.session import DEFAULT_BUDGET, Meter, Pending, RuleFacts, Session


@dataclass(frozen=True)
class RuleOptions:
    on_timeout: str = "continue"
    body_size_limit: int = 51200
    line_length_limit: int = 2048
    message_budget: float = DEFAULT_BUDGET


DEFAULT_OPTIONS = RuleOptions()


def start(
    holder: RuleSetHolder, tx: Transaction, outcome: OutcomeView, outbound: bool = False,
    options: RuleOptions = DEFAULT_OPTIONS,
) -> Session:
    """A session on the message's rule set: the one its first rule stage saw, read only once;
    its time budget too."""
    earlier = outcome.facts.get(RuleFacts)
    if earlier is None:
        pending = Pending(meter=Meter(options.message_budget))
        return Session(tx, holder.current, pending, outbound, headers=list(tx.message.headers))
    return Session(tx, earlier.ruleset, earlier.pending, outbound, headers=list(tx.message.headers))


def result(session: Session, options: RuleOptions, verdict: Verdict | None = None) -> StageResult:
    facts = Facts(RuleFacts(session.rules, session.pending))
    final = session.verdict or verdict
    unchecked = session.pending.timeouts or session.pending.meter.stopped
    if final is None and unchecked and options.on_timeout == "tempfail":
        final = Verdict.tempfail("temporary failure in header checks", dsn="4.3.0")
    return StageResult(
        verdict=final,
        edits=tuple(session.all_edits()),
        facts=facts,
        rules=tuple(session.report),
        log=tuple(session.notes),
    )
