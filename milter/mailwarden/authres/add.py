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
    found = resinfos(facts, sender, helo)
    if not found:
        return f" {authserv_id.lower()}; none"  # authres lowers the id only here
    texts = [" ".join(words) for words in found]
    text = "; ".join([authserv_id, *texts])
    if len(text) + len("Authentication-Results: ") <= FOLD_AT:
        return " " + text
    folded = (t if len(t) <= FOLD_AT - 8 else _fold(words) for words, t in zip(found, texts, strict=True))
    return " " + ";\n\t".join([_wrap(authserv_id), *folded])


def _wrap(clause: str) -> str:
    """Fold one long result at spaces outside quotes and comments."""
    if len(clause) <= FOLD_AT - 8:
        return clause
    return _fold(split_outside(clause, " "))


def _fold(words: list[str]) -> str:
    """A result's words, as many on a line as fit."""
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > FOLD_AT - 8:
            lines.append(word)
        else:
            lines[-1] += " " + word
    return "\n\t  ".join(lines)


def resinfos(facts: FactView, sender: str = "", helo: str = "") -> list[list[str]]:
    """One resinfo (RFC 8601 section 2.2) per result, in the order spf, dkim..., arc, dmarc, each
    as its words: what split_outside() would cut the result into at spaces (a quoted value or a
    comment is one word), the places a long result may be folded."""
    out: list[list[str]] = []
    spf = facts.get(SpfResult)
    if spf is not None:
        out.append(spf_words(spf, sender, helo))
    dkim = facts.get(DkimResults)
    if dkim is not None:
        out.extend(dkim_words(sig) for sig in dkim.signatures)
    arc = facts.get(ArcResult)
    if arc is not None and arc.result != "none":  # only for mail that carries ARC headers
        out.append(arc_words(arc))
    dmarc = facts.get(DmarcResult)
    if dmarc is not None:
        out.append(dmarc_words(dmarc))
    return out


# Each value below is printable ASCII without spaces, or a quoted string (with its quotes and
# backslashes escaped) when it has a space or anything else that is no token: so a word never
# holds a space outside quotes, and ends outside every quote and comment.


def spf_words(spf: SpfResult, sender: str, helo: str) -> list[str]:
    if spf.identity is SpfScope.HELO:
        prop, identity = "smtp.helo", helo or spf.domain
    else:
        prop, identity = "smtp.mailfrom", sender or spf.domain
    return [f"spf={spf.result.value}", f"{prop}={_value(_printable(identity) or 'unknown')}"]


def dkim_words(sig: DkimResult) -> list[str]:
    words = [f"dkim={sig.result.value}"]
    if reason := _clean(sig.reason, keep_space=True):
        words.append(f"reason={reason_value(reason)}")
    for prop, value in (("d", sig.domain), ("a", sig.algorithm), ("s", sig.selector), ("b", sig.b[:8])):
        if value := _printable(value):
            words.append(f"header.{prop}={_value(value)}")
    return words


def arc_words(arc: ArcResult) -> list[str]:
    """RFC 8617 section 10.2: header.oldest-pass (0 too: every AMS verified) and smtp.remote-ip."""
    words = [f"arc={arc.result.lower()}"]
    if arc.result == "pass" and arc.oldest_pass is not None:
        words.append(f"header.oldest-pass={_value(str(arc.oldest_pass))}")
    if arc.remote_ip:
        words.append(f"smtp.remote-ip={_value(arc.remote_ip)}")
    # The address is written as it came (with an "@" even unquoted): cut where a reader would.
    return split_outside(" ".join(words), " ")


def dmarc_words(dmarc: DmarcResult) -> list[str]:
    words = [f"dmarc={dmarc.result.value}"]
    comment = " ".join(f"{k}={v}" for k, v in (("p", dmarc.published), ("dis", dmarc.disposition.value)) if v)
    if comment:
        words.append(f"({comment})")
    if domain := _printable(dmarc.domain):
        words.append(f"header.from={_value(domain)}")
    if dmarc.policy:
        words.append(f"policy.dmarc={_value(dmarc.policy.value)}")
    if dmarc.override is Override.ARC:  # a trusted sealer's chain overrode the policy
        words.append("policy.override=arc")
    if any(c in comment for c in '"()\\'):  # p= is a policy name; if ever not, cut as a reader would
        return split_outside(" ".join(words), " ")
    return words


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+$")  # RFC 2045 token, matched as authres does


def _value(text: str) -> str:
    """A value as authres writes it: as is when it has an "@" or is a token, else quoted."""
    if "@" in text or _TOKEN.match(text):
        return text
    return _quoted(text)


def reason_value(text: str) -> str:
    """reason= takes a token or a quoted string, never the bare address form properties may use
    (RFC 8601 section 2.2): authres writes any value with an "@" bare, so a reason such as
    `0.0=@` read back as a property of its own (found by the long run of the read-back property)."""
    return text if _TOKEN.match(text) else _quoted(text)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _clean(text: str, keep_space: bool = False) -> str:
    # Values come from the client or the signer: keep the header printable ASCII, no line breaks.
    if not (text.isascii() and text.isprintable() and (keep_space or " " not in text)):
        low = 0x20 if keep_space else 0x21
        text = "".join(c if low <= ord(c) < 0x7F else "?" for c in text)
    return text


def _printable(text: str, keep_space: bool = False) -> str:
    text = _clean(text, keep_space)
    # authres writes any value with "@" unquoted (for addresses): quote one that needs it, or
    # a quote or semicolon in it would end or add results for every reader of the header.
    if "@" in text and not _ADDRESS.fullmatch(text):
        return _quoted(text)
    return text


# RFC 8601's address form of a property value, [local-part] "@" domain-name: one "@", a domain after it.
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]*@[A-Za-z0-9][A-Za-z0-9.-]*")
