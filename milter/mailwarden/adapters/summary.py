"""The one log line per message both adapters write, in the style of Postfix's logs."""

from __future__ import annotations

from mailwarden.core.auth import DkimResults, SpfResult
from mailwarden.core.decisions import Action, Outcome, edit_summary
from mailwarden.core.model import Transaction
from mailwarden.dmarc.result import DmarcResult


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
    if outcome.decided_by:
        parts.append(f"by={outcome.decided_by}")
    if outcome.edits and verdict.action not in (Action.REJECT, Action.TEMPFAIL, Action.DISCARD):
        parts.append("edits=" + ",".join(edit_summary(e) for e in outcome.edits))
    facts = outcome.facts
    dkim, spf, dmarc = facts.get(DkimResults), facts.get(SpfResult), facts.get(DmarcResult)
    if dkim is not None:
        parts.append("dkim=" + ",".join(sig.result.value for sig in dkim.signatures))
    if spf is not None:
        parts.append(f"spf={spf.result.value}")
    if dmarc is not None:
        parts.append(f"dmarc={dmarc.result.value}")
    parts.append(f"ms={elapsed * 1000:.1f}")
    return f"{qid}: " + ", ".join(parts)
