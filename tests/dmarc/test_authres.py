"""The Authentication-Results header: exactly one, ours, at the top; forged ones removed."""

from __future__ import annotations

import authres
from tests.support.builders import transaction

from mailwarden.authres.add import AuthresAdd, header_value
from mailwarden.authres.headers import authserv_id, received_spf, results
from mailwarden.authres.strip import AuthresStrip
from mailwarden.core.auth import DkimResult, DkimResults, DkimStatus, SpfResult, SpfScope, SpfStatus
from mailwarden.core.decisions import AddHeader, DeleteHeader, Outcome
from mailwarden.core.edits import apply_edits
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction
from mailwarden.dmarc.result import DmarcResult, DmarcStatus, Policy

FORGED = """\
Authentication-Results: MX.Example.; dkim=pass header.d=paypal.com
Received: from a by b
Authentication-Results: other.example; spf=fail
Authentication-Results: (comment (nested)) mx.example ; dmarc=pass
Authentication-Results: "mx.example"; spf=pass
Authentication-Results: mx.example.evil; spf=pass
Authentication-Results: mx.example
From: a@example.com
"""


def test_authserv_id_parsing_is_robust():
    assert authserv_id(" mx.example; spf=pass") == "mx.example"
    assert authserv_id(" MX.Example.;none") == "mx.example"
    assert authserv_id(" (c (n\\)) x) mx.example 1; none") == "mx.example"
    assert authserv_id(' "mx.example"; none') == "mx.example"
    assert authserv_id("\n\tmx.example;\n\tspf=pass") == "mx.example"
    assert authserv_id("") is None
    assert authserv_id(" ((unclosed") is None
    assert authserv_id(" ;spf=pass") is None


def test_forged_headers_deleted_highest_first_and_only_ours():
    tx = transaction(FORGED)
    result = AuthresStrip.build("mx.example").run(tx, Outcome())
    occ = [e.occurrence for e in result.edits if isinstance(e, DeleteHeader)]
    assert occ == [6, 4, 3, 1]
    apply_edits(tx, result.edits)
    left = [h.value for h in tx.message.get_all("Authentication-Results")]
    assert left == [" other.example; spf=fail", " mx.example.evil; spf=pass"]


def test_extra_remove_ids():
    tx = transaction(FORGED)
    result = AuthresStrip.build("mx.example", ["OTHER.example"]).run(tx, Outcome())
    assert [e.occurrence for e in result.edits] == [6, 4, 3, 2, 1]


def test_header_roundtrips_through_authres_parser():
    facts = Facts(
        SpfResult(SpfStatus.PASS, "example.com"),
        DkimResults((
            DkimResult(DkimStatus.PASS, "example.com", "sel", "rsa-sha256", 2048, b="AbC+/dEfGhIjK"),
            DkimResult(DkimStatus.FAIL, "other.example", "s2", "ed25519-sha256",
                       reason="signature did not verify"),
        )),
        DmarcResult(DmarcStatus.PASS, "example.com", Policy.REJECT, published="reject"),
    )
    value = header_value("mx.example", facts, "a@example.com")
    assert value.startswith(" mx.example;\n\t")
    assert all(len(line) < 100 for line in value.split("\n"))
    parsed = authres.all_features().parse_value(value.replace("\n", ""))
    assert parsed.authserv_id == "mx.example"
    methods = [(r.method, r.result) for r in parsed.results]
    assert methods == [("spf", "pass"), ("dkim", "pass"), ("dkim", "fail"), ("dmarc", "pass")]
    dk = parsed.results[1]
    assert dk.header_d == "example.com" and dk.header_s == "sel" and dk.header_b == "AbC+/dEf"
    assert parsed.results[3].header_from == "example.com"
    assert parsed.results[3].policy == "reject"
    ours = results(value)
    assert ours[0] == ("spf", "pass", {"smtp.mailfrom": "a@example.com"})
    assert ours[2][2]["header.s"] == "s2"


def test_helo_identity_and_no_results():
    assert header_value("mx.example", Facts()) == " mx.example; none"
    helo = SpfResult(SpfStatus.NONE, "h.example", SpfScope.HELO)
    v = header_value("mx.example", Facts(helo), "", "h.example")
    assert v == " mx.example; spf=none smtp.helo=h.example"


def test_stage_inserts_at_top_inbound_only():
    stage = AuthresAdd("mx.example")
    tx = transaction()
    assert stage.applies(tx)
    res = stage.run(tx, Outcome(facts=Facts(SpfResult(SpfStatus.FAIL, "example.com"))))
    value = " mx.example; spf=fail smtp.mailfrom=a@example.com"
    assert res.edits == (AddHeader("Authentication-Results", value, 0),)
    apply_edits(tx, res.edits)
    assert tx.message.delivered_headers()[0].name == "Authentication-Results"
    assert not stage.applies(transaction(direction=Direction.OUTBOUND))
    assert AuthresAdd("mx.example", outbound=True).applies(transaction(direction=Direction.OUTBOUND))


def test_received_spf_parse():
    r = received_spf(" pass (mx: a@b designates 1.2.3.4) client-ip=1.2.3.4;\n\treceiver=gw.example;")
    assert r is not None and r[0] == "pass" and r[1]["receiver"] == "gw.example"
    assert received_spf("") is None


def test_folding_splits_only_outside_quotes_and_comments():
    from mailwarden.authres.add import FOLD_AT, _wrap

    plain = "dkim=pass header.d=" + "sub." * 12 + "example.com header.s=sel header.a=rsa-sha256 header.b=abcd"
    quoted = 'dkim=fail reason="signature verification failed with a rather long reason text" header.d=ex.com'
    comment = "dmarc=fail (p=reject dis=none with a long comment inside it here) header.from=example.com"
    for clause in (plain, quoted, comment):
        lines = _wrap(clause).split("\n\t  ")
        assert " ".join(lines) == clause
        assert len(lines) > 1
    assert all(len(line) <= FOLD_AT - 8 for line in _wrap(plain).split("\n\t  "))
    assert any('"signature verification failed with a rather long reason text"' in line
               for line in _wrap(quoted).split("\n\t  "))
    assert any("(p=reject dis=none with a long comment inside it here)" in line
               for line in _wrap(comment).split("\n\t  "))


def test_one_splitter_for_results_and_folding() -> None:
    from mailwarden.authres.headers import split_outside

    text = 'mx; dkim=pass reason="a; b" (c; d) header.d=x; spf=none'
    assert split_outside(text, ";") == ["mx", ' dkim=pass reason="a; b" (c; d) header.d=x', " spf=none"]
    assert split_outside('dkim=fail reason="bad sig" (p (q r))', " ") == [
        "dkim=fail", 'reason="bad sig"', "(p (q r))"]
    # An unmatched ")" is not a comment: what follows still splits.
    assert split_outside("a) b; c", ";") == ["a) b", " c"]
