"""Our Authentication-Results writer (authres/add.py) writes, byte for byte, what the authres
package writes for the same facts: the package's result and property objects are the oracle here,
built as add.py built them before it wrote the text itself. Values are random and hostile
(quotes, comments, semicolons, "@", non-ASCII, line breaks), so quoting and escaping are covered
as well as the order of properties and the "none" header."""

from __future__ import annotations

from authres.core import (
    AuthenticationResult,
    AuthenticationResultProperty,
    AuthenticationResultsHeader,
    DKIMAuthenticationResult,
    SPFAuthenticationResult,
)
from authres.dmarc import DMARCAuthenticationResult
from hypothesis import example, given
from hypothesis import strategies as st
from tests.properties.test_authres_read_back import AUTHSERV, DKIM, DOMAINS, HOSTILE, SPF

from mailwarden.arc.clause import arc_clause as package_arc_clause
from mailwarden.arc.result import ArcResult
from mailwarden.authres.add import FOLD_AT, _clean, _printable, _wrap, header_value, reason_value
from mailwarden.authres.headers import split_outside
from mailwarden.core.auth import DkimResult, DkimResults, DkimStatus, SpfResult, SpfScope, SpfStatus
from mailwarden.core.facts import Facts
from mailwarden.dmarc.result import Disposition, DmarcResult, DmarcStatus, Override, Policy


def package_header_value(authserv_id: str, facts: Facts, sender: str, helo: str) -> str:
    """The header as written with the authres package's objects (add.py until it wrote its own)."""
    header = AuthenticationResultsHeader(None, authserv_id=authserv_id,
                                         results=package_clauses(facts, sender, helo))
    if not header.results:
        return " " + str(header.header_value())
    parts = [authserv_id, *(str(r) for r in header.results)]
    text = "; ".join(parts)
    if len(text) + len("Authentication-Results: ") <= FOLD_AT:
        return " " + text
    return " " + ";\n\t".join(_wrap(p) for p in parts)


def package_clauses(facts: Facts, sender: str, helo: str) -> list[AuthenticationResult]:
    out: list[AuthenticationResult] = []
    spf = facts.get(SpfResult)
    if spf is not None:
        if spf.identity is SpfScope.HELO:
            out.append(SPFAuthenticationResult(result=spf.result.value,
                                               smtp_helo=_printable(helo or spf.domain) or "unknown"))
        else:
            out.append(SPFAuthenticationResult(result=spf.result.value,
                                               smtp_mailfrom=_printable(sender or spf.domain) or "unknown"))
    dkim = facts.get(DkimResults)
    for sig in dkim.signatures if dkim is not None else ():
        clause = DKIMAuthenticationResult(
            result=sig.result.value, reason=_reason(sig.reason) or None,
            header_d=_printable(sig.domain) or None, header_s=_printable(sig.selector) or None,
            header_a=_printable(sig.algorithm) or None)
        if sig.b:
            clause.properties.append(AuthenticationResultProperty("header", "b", _printable(sig.b[:8])))
        out.append(clause)
    arc = facts.get(ArcResult)
    if arc is not None and arc.result != "none":
        out.append(package_arc_clause(arc))
    dmarc = facts.get(DmarcResult)
    if dmarc is not None:
        pairs = (("p", dmarc.published), ("dis", dmarc.disposition.value))
        comment = " ".join(f"{k}={v}" for k, v in pairs if v)
        clause = DMARCAuthenticationResult(result=dmarc.result.value, result_comment=comment or None,
                                           header_from=_printable(dmarc.domain) or None)
        if dmarc.policy:
            clause.policy = dmarc.policy.value
        if dmarc.override is Override.ARC:
            clause.properties.append(AuthenticationResultProperty("policy", "override", "arc"))
        out.append(clause)
    return out


IPS = st.sampled_from(["", "192.0.2.1", "2001:db8::1", "IPv6:2001:db8::2", "10.0.0.1 x", 'a"b'])
ARC = st.builds(ArcResult, st.sampled_from(["pass", "fail", "none", "temperror", "permerror"]),
                oldest_pass=st.none() | st.integers(0, 50), remote_ip=IPS)
DMARC = st.builds(DmarcResult, st.sampled_from(list(DmarcStatus)), DOMAINS,
                  st.none() | st.sampled_from(list(Policy)), st.sampled_from(list(Disposition)),
                  # Not only policy names: a comment that is not one word must fold as it reads.
                  published=st.sampled_from(["", "none", "quarantine", "reject", "a) b", '"q r', "(x y"]),
                  override=st.sampled_from(list(Override)))
# Upper case and blanks too: authres lowers the id of a header without results.
IDS = st.one_of(AUTHSERV, st.sampled_from(["MX.Example", "mx.example.", "Mx"]))


def _reason(text: str) -> str:
    """Where we differ from authres on purpose: a reason with an "@" is quoted (authres writes
    any value with an "@" bare), handed to it quoted already, which it then leaves alone."""
    clean = _clean(text, keep_space=True)
    return reason_value(clean) if "@" in clean else clean


@given(IDS, st.none() | SPF, st.lists(DKIM, max_size=4), st.none() | ARC, st.none() | DMARC,
       HOSTILE, HOSTILE)
@example("MX.Example", None, [], None, None, "", "")
@example("mx.test", SpfResult(SpfStatus.PASS, "a.test", SpfScope.HELO), [], None, None, "", "")
@example("mx.test", None,
         [DkimResult(DkimStatus.FAIL, "d.test", "s", "rsa-sha256", 0, 'bad "sig" \\ x', "AbC+/dEfGh")],
         ArcResult("pass", oldest_pass=0, remote_ip="2001:db8::1"),
         DmarcResult(DmarcStatus.FAIL, "", Policy.REJECT, Disposition.REJECT, published="reject",
                     override=Override.ARC), "a@b.test", "h.test")
@example("mx.test", None, [], None, DmarcResult(DmarcStatus.FAIL, "long-name." * 5 + "test", Policy.REJECT,
                                                published="x) y"), "", "")
def test_writer_matches_the_authres_package(aid: str, spf: SpfResult | None, dkim: list[DkimResult],
                                            arc: ArcResult | None, dmarc: DmarcResult | None,
                                            sender: str, helo: str) -> None:
    facts = Facts(*(f for f in (spf, DkimResults(tuple(dkim)) if dkim else None, arc, dmarc)
                    if f is not None))
    assert header_value(aid, facts, sender, helo) == package_header_value(aid, facts, sender, helo)


@given(st.text(st.sampled_from(' ;()"\\ab='), max_size=30), st.sampled_from([" ", ";"]))
@example('x "a\\ " b', " ")  # the separator is the escaped character: the quote after it ends the string
@example('(a "b) c" d) e', " ")
def test_splitting_by_pieces_agrees_with_the_character_walk(text: str, sep: str) -> None:
    assert split_outside(text, sep) == _split_chars(text, sep)


def _split_chars(text: str, sep: str) -> list[str]:
    """split_outside() as it was written first: character by character."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    depth = 0
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True  # a quoted-pair: \" does not end the string
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(depth - 1, 0)
        if ch == sep and not quoted and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts
