"""The one Authentication-Results header (RFC 8601) with everything checked, at the top.

Written from the facts of earlier stages: spf= (SpfResult), one dkim= per signature
(DkimResults), arc= (ArcResult, for mail that carries ARC headers), dmarc= (DmarcResult).
Inserted at index 0, above the MTA's own Received header, where RFC 8601 section 5 wants it.

The text is what the authres package writes for the same results, byte for byte (a differential
test in tests/properties keeps it so), rendered here with plain string work: building authres'
result and property objects per message was 7-10% of an inbound message's Python time. The
authres package stays what reads others' headers (arc/override.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.arc.result import ArcResult
from mailwarden.authres.headers import split_outside
from mailwarden.core.auth import DkimResult, DkimResults, SpfResult, SpfScope
from mailwarden.core.decisions import AddHeader, OutcomeView, StageResult
from mailwarden.core.facts import FactView
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.dmarc.result import DmarcResult, Override

FOLD_AT = 78


@dataclass(slots=True)
class AuthresAdd:
    authserv_id: str
    outbound: bool = False
    name: str = "authres"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return self.outbound or tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        value = header_value(self.authserv_id, outcome.facts, tx.envelope.sender, tx.connection.helo)
        return StageResult(edits=(AddHeader("Authentication-Results", value, index=0),))


def header_value(authserv_id: str, facts: FactView, sender: str = "", helo: str = "") -> str:
    """The header value: leading space, folded with "\\n\\t" between results when long."""
    found = clauses(facts, sender, helo)
    if not found:
        return f" {authserv_id.lower()}; none"  # authres lowers the id only here
    parts = [authserv_id, *found]
    text = "; ".join(parts)
    if len(text) + len("Authentication-Results: ") <= FOLD_AT:
        return " " + text
    return " " + ";\n\t".join(_wrap(p) for p in parts)


def _wrap(clause: str) -> str:
    """Fold one long result at spaces outside quotes and comments."""
    if len(clause) <= FOLD_AT - 8:
        return clause
    words = split_outside(clause, " ")
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > FOLD_AT - 8:
            lines.append(word)
        else:
            lines[-1] += " " + word
    return "\n\t  ".join(lines)


def clauses(facts: FactView, sender: str = "", helo: str = "") -> list[str]:
    """One resinfo (RFC 8601 section 2.2) per result, in the order spf, dkim..., arc, dmarc."""
    out: list[str] = []
    spf = facts.get(SpfResult)
    if spf is not None:
        out.append(spf_clause(spf, sender, helo))
    dkim = facts.get(DkimResults)
    if dkim is not None:
        out.extend(dkim_clause(sig) for sig in dkim.signatures)
    arc = facts.get(ArcResult)
    if arc is not None and arc.result != "none":  # only for mail that carries ARC headers
        out.append(arc_clause(arc))
    dmarc = facts.get(DmarcResult)
    if dmarc is not None:
        out.append(dmarc_clause(dmarc))
    return out


def spf_clause(spf: SpfResult, sender: str, helo: str) -> str:
    if spf.identity is SpfScope.HELO:
        return f"spf={spf.result.value} smtp.helo={_value(_printable(helo or spf.domain) or 'unknown')}"
    return f"spf={spf.result.value} smtp.mailfrom={_value(_printable(sender or spf.domain) or 'unknown')}"


def dkim_clause(sig: DkimResult) -> str:
    text = f"dkim={sig.result.value}"
    reason = _printable(sig.reason, keep_space=True)
    if reason:
        text += f" reason={_value(reason)}"
    for prop, value in (("d", sig.domain), ("a", sig.algorithm), ("s", sig.selector), ("b", sig.b[:8])):
        if value := _printable(value):
            text += f" header.{prop}={_value(value)}"
    return text


def arc_clause(arc: ArcResult) -> str:
    """RFC 8617 section 10.2: header.oldest-pass (0 too: every AMS verified) and smtp.remote-ip."""
    text = f"arc={arc.result.lower()}"
    if arc.result == "pass" and arc.oldest_pass is not None:
        text += f" header.oldest-pass={_value(str(arc.oldest_pass))}"
    if arc.remote_ip:
        text += f" smtp.remote-ip={_value(arc.remote_ip)}"
    return text


def dmarc_clause(dmarc: DmarcResult) -> str:
    text = f"dmarc={dmarc.result.value}"
    comment = " ".join(f"{k}={v}" for k, v in (("p", dmarc.published), ("dis", dmarc.disposition.value)) if v)
    if comment:
        text += f" ({comment})"
    if domain := _printable(dmarc.domain):
        text += f" header.from={_value(domain)}"
    if dmarc.policy:
        text += f" policy.dmarc={_value(dmarc.policy.value)}"
    if dmarc.override is Override.ARC:  # a trusted sealer's chain overrode the policy
        text += " policy.override=arc"
    return text


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+$")  # RFC 2045 token, matched as authres does


def _value(text: str) -> str:
    """A value as authres writes it: as is when it has an "@" or is a token, else quoted."""
    if "@" in text or _TOKEN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _printable(text: str, keep_space: bool = False) -> str:
    # Values come from the client or the signer: keep the header printable ASCII, no line breaks.
    if not (text.isascii() and text.isprintable() and (keep_space or " " not in text)):
        low = 0x20 if keep_space else 0x21
        text = "".join(c if low <= ord(c) < 0x7F else "?" for c in text)
    # authres writes any value with "@" unquoted (for addresses): quote one that needs it, or
    # a quote or semicolon in it would end or add results for every reader of the header.
    if "@" in text and not _ADDRESS.fullmatch(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+")
