"""What the rule stages share: the per-message rule set snapshot and the pending message effects."""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import OutcomeView, StageResult, Verdict
from mailwarden.core.facts import Facts
from mailwarden.core.model import Transaction
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.session import Pending, RuleFacts, Session


@dataclass(frozen=True)
class RuleOptions:
    on_timeout: str = "continue"
    body_size_limit: int = 51200
    line_length_limit: int = 2048


DEFAULT_OPTIONS = RuleOptions()


def start(holder: RuleSetHolder, tx: Transaction, outcome: OutcomeView, outbound: bool = False) -> Session:
    """A session on the message's rule set: the one its first rule stage saw, read only once."""
    earlier = outcome.facts.get(RuleFacts)
    if earlier is None:
        holder.maybe_reload()
        return Session(tx, holder.current, Pending(), outbound, headers=list(tx.message.headers))
    return Session(tx, earlier.ruleset, earlier.pending, outbound, headers=list(tx.message.headers))


def result(session: Session, options: RuleOptions, verdict: Verdict | None = None) -> StageResult:
    facts = Facts(RuleFacts(session.rules, session.pending))
    final = session.verdict or verdict
    if final is None and session.pending.timeouts and options.on_timeout == "tempfail":
        final = Verdict.tempfail("temporary failure in header checks", dsn="4.3.0")
    return StageResult(
        verdict=final,
        edits=tuple(session.all_edits()),
        facts=facts,
        rules=tuple(session.report),
        log=tuple(session.notes),
    )
