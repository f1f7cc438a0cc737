"""One recorded DMARC evaluation: what an aggregate report row and a failure report need.

`row_from` is the only place that reads the pipeline's facts for reports; pure. A Row is a
NamedTuple: it is built for every inbound message, and a tuple is the cheapest record to build.
"""

from __future__ import annotations

import email.utils
import time
from typing import NamedTuple

from mailwarden.core.auth import DkimResults, SpfResult
from mailwarden.core.decisions import Action, OutcomeView
from mailwarden.core.model import Direction, Message, Transaction, strip_brackets
from mailwarden.dmarc.result import DmarcResult


class Row(NamedTuple):
    time: int  # seconds since the epoch
    policy_domain: str  # where the record was found
    from_domain: str  # RFC5322.From
    source_ip: str
    envelope_from: str  # RFC5321.MailFrom domain ("" for the null sender)
    envelope_to: str  # the first recipient's domain
    spf_result: str
    spf_domain: str
    spf_scope: str  # mfrom or helo
    dkim: tuple[tuple[str, str, str], ...]  # (d=, s=, result) per signature, top down
    dmarc_result: str  # pass, fail, temperror
    dkim_aligned: str  # pass or fail
    spf_aligned: str
    p: str  # the published policy
    sp: str
    np: str
    pct: int
    adkim: str
    aspf: str
    fo: str  # colon-separated, as in the record
    rua: str  # comma-separated URIs
    ruf: str
    ri: int
    disposition: str  # none, quarantine, reject: what was applied
    override: str = ""  # why the disposition is not the policy (sampled_out, report_only, ...)
    override_reason: str = ""


def row_from(tx: Transaction, outcome: OutcomeView, when: float) -> Row | None:
    """The row for an inbound message whose From domain publishes a DMARC record; None otherwise.
    Values are plain str (results may be StrEnums: a store must not see the enum type).

    Nothing is recorded for a message that is temp-failed (it comes back and is recorded then)
    or whose client address is unknown (a report row needs one).
    """
    dmarc = outcome.facts.get(DmarcResult)
    if (tx.direction is not Direction.INBOUND or dmarc is None or dmarc.record is None
            or outcome.verdict.action is Action.TEMPFAIL or not tx.connection.client_ip):
        return None
    rec = dmarc.record
    spf = outcome.facts.get(SpfResult)
    signatures = outcome.facts.get(DkimResults)
    dkim = signatures.signatures if signatures is not None else ()
    sender = tx.envelope.sender
    rcpts = tx.envelope.rcpts
    if spf is not None:
        spf_result, spf_domain = str(spf.result), spf.domain
        spf_scope = "helo" if spf.identity == "helo" else "mfrom"
    else:  # SPF not checked: the report still needs one SPF result
        spf_result, spf_domain, spf_scope = "none", _domain(sender) or tx.connection.helo, "mfrom"
    return Row(
        time=int(when),
        policy_domain=dmarc.policy_domain,
        from_domain=dmarc.domain,
        source_ip=tx.connection.client_ip,
        envelope_from=_domain(sender),
        envelope_to=_domain(strip_brackets(rcpts[0])) if rcpts else "",
        spf_result=spf_result,
        spf_domain=spf_domain,
        spf_scope=spf_scope,
        dkim=tuple((r.domain, r.selector, str(r.result)) for r in dkim),
        dmarc_result=str(dmarc.result),
        dkim_aligned=str(dmarc.dkim_aligned),
        spf_aligned=str(dmarc.spf_aligned),
        p=rec.p,
        sp=rec.sp or rec.p,
        np=rec.np,
        pct=rec.pct,
        adkim=rec.adkim,
        aspf=rec.aspf,
        fo=":".join(rec.fo),
        rua=",".join(rec.rua),
        ruf=",".join(rec.ruf),
        ri=rec.ri,
        disposition=str(dmarc.disposition) if dmarc.disposition in ("quarantine", "reject") else "none",
        override=str(dmarc.override),
        override_reason=dmarc.reason if dmarc.override else "",
    )


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".") if "@" in address else ""


def received_time(message: Message) -> float:
    """When the receiving MTA took the message: the date of its own (topmost) Received header,
    which dry-run finds in archived mail; now when there is none or it has no readable date."""
    header = message.mta_header
    if header is not None:
        try:
            parsed = email.utils.parsedate_to_datetime(header.unfolded().rpartition(";")[2].strip())
            if parsed.tzinfo is not None:
                return parsed.timestamp()
        except (TypeError, ValueError, IndexError):
            pass
    return time.time()
