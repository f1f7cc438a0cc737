"""The one Authentication-Results header (RFC 8601) with everything checked, at the top.

Built with authres from the facts of earlier stages: spf= (SpfResult), one dkim= per signature
(DkimResults), dmarc= (DmarcResult). Inserted at index 0, above the MTA's own Received header, where
RFC 8601 section 5 wants it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authres.core import (
    AuthenticationResult,
    AuthenticationResultProperty,
    AuthenticationResultsHeader,
    DKIMAuthenticationResult,
    SPFAuthenticationResult,
)
from authres.dmarc import DMARCAuthenticationResult

from mailwarden.arc.clause import arc_clause
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
    header = AuthenticationResultsHeader(None, authserv_id=authserv_id, results=clauses(facts, sender, helo))
    if not header.results:
        return " " + str(header.header_value())
    # The same text authres' header_value() gives, with each result rendered once.
    parts = [authserv_id, *(str(r) for r in header.results)]
    text = "; ".join(parts)
    if len(text) + len("Authentication-Results: ") <= FOLD_AT:
        return " " + text
    return " " + ";\n\t".join(_wrap(p) for p in parts)


def _wrap(clause: str) -> str:
    """Fold one long result at spaces outside quotes and comments."""
    if len(clause) <= FOLD_AT - 8:
        return clause
    # Usually nothing is quoted or commented, and every space is a place to fold.
    words = split_outside(clause, " ") if '"' in clause or "(" in clause else clause.split(" ")
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > FOLD_AT - 8:
            lines.append(word)
        else:
            lines[-1] += " " + word
    return "\n\t  ".join(lines)


def clauses(facts: FactView, sender: str = "", helo: str = "") -> list[AuthenticationResult]:
    out: list[AuthenticationResult] = []
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


def spf_clause(spf: SpfResult, sender: str, helo: str) -> AuthenticationResult:
    if spf.identity is SpfScope.HELO:
        helo_id = _printable(helo or spf.domain) or "unknown"
        return SPFAuthenticationResult(result=spf.result.value, smtp_helo=helo_id)
    mailfrom = _printable(sender or spf.domain) or "unknown"
    return SPFAuthenticationResult(result=spf.result.value, smtp_mailfrom=mailfrom)


def dkim_clause(sig: DkimResult) -> AuthenticationResult:
    clause = DKIMAuthenticationResult(
        result=sig.result.value,
        reason=_printable(sig.reason, keep_space=True) or None,
        header_d=_printable(sig.domain) or None,
        header_s=_printable(sig.selector) or None,
        header_a=_printable(sig.algorithm) or None,
    )
    if sig.b:
        clause.properties.append(AuthenticationResultProperty("header", "b", _printable(sig.b[:8])))
    return clause


def dmarc_clause(dmarc: DmarcResult) -> AuthenticationResult:
    comment = " ".join(
        f"{k}={v}" for k, v in (("p", dmarc.published), ("dis", dmarc.disposition.value)) if v
    )
    clause = DMARCAuthenticationResult(
        result=dmarc.result.value, result_comment=comment or None,
        header_from=_printable(dmarc.domain) or None,
    )
    if dmarc.policy:
        clause.policy = dmarc.policy.value
    if dmarc.override is Override.ARC:  # a trusted sealer's chain overrode the policy
        clause.properties.append(AuthenticationResultProperty("policy", "override", "arc"))
    return clause


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
