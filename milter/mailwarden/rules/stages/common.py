"""What the rule stages share: the per-message rule set snapshot and the pending message effects."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mailwarden.core.decisions import Outcome, StageResult, Verdict
from mailwarden.core.model import Transaction
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.loader import RuleSet
from mailwarden.rules.session import PENDING_FACT, SET_FACT, Pending, Session


@dataclass(frozen=True)
class RuleOptions:
    on_timeout: str = "continue"
    body_size_limit: int = 51200
    line_length_limit: int = 2048


DEFAULT_OPTIONS = RuleOptions()


def start(holder: RuleSetHolder, tx: Transaction, outcome: Outcome, outbound: bool = False) -> Session:
    """A session on the message's rule set: the one its first rule stage saw, read only once."""
    ruleset = outcome.facts.get(SET_FACT)
    if not isinstance(ruleset, RuleSet):
        holder.maybe_reload()
        ruleset = holder.current
    old = outcome.facts.get(PENDING_FACT)
    pending = (
        dataclasses.replace(old, bcc=list(old.bcc), timeouts=list(old.timeouts))
        if isinstance(old, Pending)
        else Pending()
    )
    return Session(tx, ruleset, pending, outbound, headers=list(tx.message.headers))


def result(session: Session, options: RuleOptions, verdict: Verdict | None = None) -> StageResult:
    facts: dict[str, Any] = {SET_FACT: session.rules, PENDING_FACT: session.pending}
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
