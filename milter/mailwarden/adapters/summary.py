"""The one log line per message both adapters write, in the style of Postfix's logs, and the other
lines an outcome gives (rule log lines, warnings, failed stages, debug notes)."""

from __future__ import annotations

import logging

from mailwarden.core.auth import DkimResults, SpfResult
from mailwarden.core.decisions import Action, Outcome, edit_summary
from mailwarden.core.model import Transaction
from mailwarden.dkim.sign_stage import DkimSigning
from mailwarden.dmarc.result import DmarcResult

# The rule stages, and the header_checks keywords that give each verdict: a rule stage's verdict
# is credited to the class of the rule that gave it (a HOLD in header_checks becomes the
# quarantine only at the last rule stage, body_checks, which is not where it was decided).
_RULE_STAGES = frozenset({"header_checks", "outbound_header_checks", "body_checks"})
_RULE_WORDS = {
    Action.REJECT: ("REJECT", "DEFER"),
    Action.TEMPFAIL: ("REJECT", "DEFER"),
    Action.DISCARD: ("DISCARD",),
    Action.QUARANTINE: ("HOLD",),
    Action.ACCEPT: ("PASS", "OK"),
}


def summary_line(tx: Transaction, outcome: Outcome, elapsed: float) -> str:
    """e.g. `4XyZ: client=mail.example[192.0.2.1], dir=inbound, verdict=reject 554 5.4.0 ..., ms=1.2`."""
    conn = tx.connection
    qid = tx.envelope.queue_id or "NOQUEUE"
    verdict = outcome.verdict
    text = verdict.action.value
    if verdict.reply is not None:
        text += f" {verdict.reply}"
    elif verdict.action is Action.QUARANTINE:
        text += f" ({verdict.reason})"
    parts = [
        f"client={conn.client_name or 'unknown'}[{conn.client_ip}]",
        f"from=<{tx.envelope.sender}>",
        f"dir={tx.direction.value}",
        f"verdict={text}",
    ]
    by = deciding_stage(outcome)
    if by:
        parts.append(f"by={by}")
    if outcome.edits and verdict.action not in (Action.REJECT, Action.TEMPFAIL, Action.DISCARD):
        parts.append("edits=" + ",".join(edit_summary(e) for e in outcome.edits))
    signed = signatures_made(outcome)
    if signed:
        parts.append("signed=" + ",".join(f"{d}/{s}" for d, s, _ in signed))
    facts = outcome.facts
    dkim, spf, dmarc = facts.get(DkimResults), facts.get(SpfResult), facts.get(DmarcResult)
    if dkim is not None:
        parts.append("dkim=" + (",".join(sig.result.value for sig in dkim.signatures) or "none"))
    if spf is not None:
        parts.append(f"spf={spf.result.value}")
    if dmarc is not None:
        parts.append(f"dmarc={dmarc.result.value}")
    parts.append(f"ms={elapsed * 1000:.1f}")
    return f"{qid}: " + ", ".join(parts)


def deciding_stage(outcome: Outcome) -> str:
    """The stage that decided the verdict; for the rule stages, the class of the deciding rule."""
    by = outcome.decided_by
    words = _RULE_WORDS.get(outcome.verdict.action)
    if by in _RULE_STAGES and words:
        for rule in reversed(outcome.rules):
            action = str(rule.get("action", "")).upper()
            if action.startswith(words) or action[:1] in ("4", "5"):
                return str(rule.get("class") or by)
    return by


def signatures_made(outcome: Outcome) -> list[tuple[str, str, str]]:
    """(d=, s=, algorithm) of each DKIM signature added to this message."""
    sign = outcome.facts.get(DkimSigning)
    return list(sign.signed) if sign is not None else []


def sign_warnings(outcome: Outcome) -> list[str]:
    """What signing found that will break the signature on the way (8-bit body, long lines)."""
    sign = outcome.facts.get(DkimSigning)
    return list(sign.warnings) if sign is not None else []


def log_outcome(log: logging.Logger, tx: Transaction, outcome: Outcome, elapsed: float) -> None:
    """Everything a message's outcome has to say, each line at its level, keyed by the queue id."""
    qid = tx.envelope.queue_id or "NOQUEUE"
    if log.isEnabledFor(logging.INFO):
        log.info("%s", summary_line(tx, outcome, elapsed))
    for line in outcome.log:
        log.info("%s", line)
    for warning in sign_warnings(outcome):
        log.warning("%s: dkim-sign: %s", qid, warning)
    for error in outcome.errors:
        log.warning("%s: %s", qid, error)
    if log.isEnabledFor(logging.DEBUG):
        for note in outcome.notes:
            log.debug("%s: %s", qid, note)
