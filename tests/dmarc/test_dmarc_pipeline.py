"""DMARC, SPF and the A-R header through the real pipeline (build_runtime over a static zone)."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dmarcsupport import DATA
from tests.support import builders
from tests.support.builders import transaction

import dkim
from mailwarden.bootstrap import Runtime
from mailwarden.config import parse
from mailwarden.core.auth import DkimResult, DkimResults, DkimStatus
from mailwarden.core.decisions import Action, AddHeader, DeleteHeader, Outcome
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction
from mailwarden.core.pipeline import Phase
from mailwarden.dmarc.result import DmarcResult

ZONES = [str(DATA / "policies.zone")]
BASE = '[policy]\nauthserv_id = "mx.test"\n'


def runtime(extra: str = "", draw: float = 0.0) -> Runtime:
    return builders.runtime(BASE + extra, zones=ZONES, draw=draw)


def run(extra: str = "", draw: float = 0.0, facts=None, **kw):
    rt = runtime(extra, draw)
    tx = transaction(**kw)
    outcome = Outcome(facts=Facts(*(facts or ())))
    if facts:
        # Stand-in for DKIM results: run the stages after dkim-verify with our facts in place.
        for phase in (Phase.ENVELOPE, Phase.HEADERS, Phase.MESSAGE):
            for stage in rt.pipeline.stages:
                if stage.name.startswith("dkim") or stage.phase is not phase or outcome.finished:
                    continue
                if stage.applies(tx):
                    rt.pipeline._fold(tx, stage.name, stage.run(tx, outcome), outcome)
    else:
        rt.pipeline.run(tx, outcome)
    return tx, outcome


def ar_headers(tx):
    return [h for h in tx.message.delivered_headers() if h.name.lower() == "authentication-results"]


def test_spf_aligned_pass_delivers_with_one_ar_header_at_top():
    tx, out = run(headers="From: Alice <alice@reject.example>\nSubject: x",
                  mail_from="<bounce@bounce.reject.example>", ip="192.0.2.5")
    assert out.verdict.action is Action.CONTINUE
    dmarc = out.auth["dmarc"]
    assert dmarc["result"] == "pass" and dmarc["policy"] == "reject" and dmarc["disposition"] == "none"
    assert dmarc["alignment"] == {"dkim": "fail", "spf": "pass"}
    assert out.auth["spf"]["result"] == "pass" and out.auth["spf"]["domain"] == "bounce.reject.example"
    [ar] = ar_headers(tx)
    assert tx.message.delivered_headers()[0] is ar
    text = ar.value.replace("\n\t", " ")
    assert text.startswith(" mx.test;")
    assert "spf=pass smtp.mailfrom=bounce@bounce.reject.example" in text
    assert "dmarc=pass" in text and "header.from=reject.example" in text and "policy.dmarc=reject" in text


def test_reject_550_with_domain():
    _tx, out = run(headers="From: alice@reject.example", mail_from="<x@reject.example>", ip="203.0.113.9")
    assert out.verdict.action is Action.REJECT
    assert str(out.verdict.reply) == "550 5.7.1 rejected by DMARC policy for reject.example"
    assert out.auth["spf"]["result"] == "fail"
    assert out.auth["dmarc"]["disposition"] == "reject"
    assert out.decided_by == "dmarc-enforce"


def test_quarantine_holds_and_header_is_written_first():
    tx, out = run(headers="From: q@quar.example", mail_from="<q@quar.example>", ip="203.0.113.9")
    assert out.verdict.action is Action.QUARANTINE
    assert "quar.example" in out.verdict.reason
    assert len(ar_headers(tx)) == 1
    assert "dmarc=fail" in ar_headers(tx)[0].value


def test_quarantine_as_header_only():
    _tx, out = run('[dmarc]\nquarantine = "header"\n', headers="From: q@quar.example",
                  mail_from="<q@quar.example>", ip="203.0.113.9")
    assert out.verdict.action is Action.CONTINUE
    assert any(isinstance(e, AddHeader) and e.name == "X-Mailwarden-Quarantine" for e in out.edits)


def test_report_only_never_rejects():
    _tx, out = run('[dmarc]\nmode = "report"\n', headers="From: alice@reject.example",
                  mail_from="<x@reject.example>", ip="203.0.113.9")
    assert out.verdict.action is Action.CONTINUE
    assert out.auth["dmarc"]["result"] == "fail" and out.auth["dmarc"]["override"] == "report_only"


def test_exemptions():
    common = dict(headers="From: alice@reject.example", mail_from="<x@reject.example>", ip="203.0.113.9")
    for extra in ('exempt_networks = ["203.0.113.0/24"]', 'exempt_sender_domains = ["REJECT.example"]',
                  'exempt_recipients = ["b@rcpt.example"]', 'exempt_recipients = ["@rcpt.example"]'):
        _, out = run("[dmarc]\n" + extra + "\n", **common)
        assert out.verdict.action is Action.CONTINUE, extra
        assert out.auth["dmarc"]["override"].startswith("exempt_")
    _, out = run('[dmarc]\nexempt_recipients = ["c@rcpt.example"]\n', **common)
    assert out.verdict.action is Action.REJECT


def test_outbound_gets_no_checks_and_no_header():
    tx, out = run(headers="From: alice@reject.example", mail_from="<x@reject.example>", ip="203.0.113.9",
                  direction=Direction.OUTBOUND)
    assert out.verdict.action is Action.CONTINUE
    assert "spf" not in out.auth and "dmarc" not in out.auth and not ar_headers(tx)


def test_config_errors_have_key_paths():
    import pytest

    from mailwarden.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        parse('[dmarc]\nmode = "yes"\nexempt_networks = ["300.1.1.1/8"]\nreject_text = "{x}"\n'
              '[spf]\nlookup_time = 0\n')
    text = str(err.value)
    for key in ("dmarc.mode", "dmarc.exempt_networks[0]", "dmarc.reject_text", "spf.lookup_time"):
        assert key in text


def test_multiple_from_rejected_by_default_and_configurable():
    hs = "From: a@reject.example\nFrom: b@none.example"
    _, out = run(headers=hs, ip="192.0.2.5")
    assert str(out.verdict.reply) == "550 5.7.1 not exactly one From address"
    assert out.auth["dmarc"]["result"] == "permerror" and "2 From headers" in out.auth["dmarc"]["reason"]
    _, out = run(headers="From: a@reject.example, b@none.example", ip="192.0.2.5")
    assert out.verdict.action is Action.REJECT
    _, out = run(headers="Subject: no from", ip="192.0.2.5")
    assert out.verdict.action is Action.REJECT
    tx, out = run('[dmarc]\nmulti_from = "accept"\n', headers=hs, ip="192.0.2.5")
    assert out.verdict.action is Action.CONTINUE and "dmarc=permerror" in ar_headers(tx)[0].value
    _, out = run('[dmarc]\nmulti_from = "quarantine"\n', headers=hs, ip="192.0.2.5")
    assert out.verdict.action is Action.QUARANTINE


def test_temperror_tempfails_by_default_or_accepts():
    _, out = run(headers="From: a@slow.example", mail_from="<a@slow.example>")
    assert str(out.verdict.reply).startswith("451 4.7.5 ")
    tx, out = run('[dmarc]\ntemperror = "accept"\n', headers="From: a@slow.example",
                  mail_from="<a@slow.example>")
    assert out.verdict.action is Action.CONTINUE
    assert "dmarc=temperror" in ar_headers(tx)[0].value


def test_pct_uses_injected_random():
    common = dict(headers="From: a@pct.example", mail_from="<a@pct.example>", ip="203.0.113.9")
    assert run(draw=0.1, **common)[1].verdict.action is Action.REJECT
    assert run(draw=0.9, **common)[1].verdict.action is Action.QUARANTINE


def test_forged_ar_removed_and_ours_is_the_only_one():
    hs = ("Authentication-Results: mx.test; dmarc=pass header.from=reject.example\n"
          "Authentication-Results: MX.TEST (forged); dkim=pass header.d=reject.example\n"
          "Authentication-Results: upstream.example; spf=pass smtp.mailfrom=reject.example\n"
          "From: alice@reject.example")
    tx, out = run('[dmarc]\nmode = "report"\n', headers=hs, mail_from="<x@reject.example>", ip="203.0.113.9")
    deletes = [e for e in out.edits if isinstance(e, DeleteHeader)]
    assert [d.occurrence for d in deletes] == [2, 1]
    ids = [h.value.split(";")[0].strip().lower() for h in ar_headers(tx)]
    assert ids == ["mx.test", "upstream.example"]
    assert out.auth["dmarc"]["result"] == "fail"  # the forged pass changed nothing


def test_trusted_upstream_spf_result():
    hs = ("Authentication-Results: gw.example; spf=pass smtp.mailfrom=x@reject.example\n"
          "Authentication-Results: evil.example; spf=fail smtp.mailfrom=x@reject.example\n"
          "From: alice@reject.example")
    common = dict(headers=hs, mail_from="<x@reject.example>", ip="203.0.113.9")
    _, out = run(**common)
    assert out.verdict.action is Action.REJECT  # nothing upstream is trusted by default
    _, out = run('[spf]\ntrusted_authserv_ids = ["GW.example"]\n', **common)
    assert out.verdict.action is Action.CONTINUE and out.auth["dmarc"]["result"] == "pass"
    hs2 = ("Received-SPF: pass (gw) receiver=gw.example; envelope-from=<x@reject.example>\n"
           "From: a@reject.example")
    _, out = run('[spf]\ntrusted_authserv_ids = ["gw.example"]\n', headers=hs2,
                 mail_from="<x@reject.example>", ip="203.0.113.9")
    assert out.auth["dmarc"]["result"] == "pass"


def test_dkim_facts_align_and_appear_in_header():
    facts = [DkimResults((
        DkimResult(DkimStatus.FAIL, "reject.example", "s1", "rsa-sha256", b="AAAAbbbbCCCC"),
        DkimResult(DkimStatus.PASS, "mail.reject.example", "s2", "ed25519-sha256", b="zzzzyyyyxx")))]
    tx, out = run(facts=facts, headers="From: alice@reject.example", mail_from="<x@other.example>",
                  ip="203.0.113.9")
    assert out.verdict.action is Action.CONTINUE
    result = out.facts.get(DmarcResult)
    assert result is not None
    assert isinstance(result, DmarcResult) and result.dkim_aligned == "pass"
    value = ar_headers(tx)[0].value.replace("\n\t  ", " ").replace("\n\t", " ")
    assert "dkim=fail header.d=reject.example header.a=rsa-sha256 header.s=s1 header.b=AAAAbbbb" in value
    assert "dkim=pass header.d=mail.reject.example" in value and "header.b=zzzzyyyy" in value


def test_tree_walk_mode_through_config():
    _, out = run('[dmarc]\ndiscovery = "tree-walk"\n', headers="From: a@testing.example", ip="203.0.113.9",
                 mail_from="<a@testing.example>")
    assert out.verdict.action is Action.QUARANTINE
    assert out.auth["dmarc"]["override"] == "testing"


def test_disabled():
    tx, out = run('[dmarc]\nenabled = false\n[spf]\nenabled = false\n', headers="From: a@reject.example",
                  ip="203.0.113.9")
    assert out.verdict.action is Action.CONTINUE
    assert ar_headers(tx)[0].value == " mx.test; none"


def test_real_dkim_signature_through_the_verify_stage(tmp_path):
    """A message signed by dkimpy, verified by the DKIM stage, aligned by DMARC, shown in the A-R."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    pub = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    raw = (b"From: Alice <alice@reject.example>\r\nTo: b@rcpt.example\r\nSubject: signed\r\n"
           b"Date: Sun, 22 Nov 2026 04:00:00 +0000\r\nMessage-ID: <s@reject.example>\r\n\r\nhello\r\n")
    sig = dkim.sign(raw, b"sel", b"mail.reject.example", pem).decode()
    b_value = re.sub(r"\s", "", sig.split("b=")[-1])
    zone = tmp_path / "z.zone"
    zone.write_text((DATA / "policies.zone").read_text()
                    + f'sel._domainkey.mail.reject.example. IN TXT "v=DKIM1; p={pub}"\n')
    rt = builders.runtime(BASE, zones=[zone])
    head, _, body = (sig + raw.decode()).partition("\r\n\r\n")
    tx = transaction(head.replace("\r\n", "\n"), body=body.encode(), mail_from="<x@other.example>",
                 ip="203.0.113.9")
    out = rt.pipeline.run(tx)
    assert out.verdict.action is Action.CONTINUE, out.notes
    assert out.auth["dmarc"]["alignment"] == {"dkim": "pass", "spf": "fail"}
    value = ar_headers(tx)[0].value.replace("\n\t  ", " ").replace("\n\t", " ").replace('"', "")
    assert "dkim=pass header.d=mail.reject.example" in value and "header.s=sel" in value
    assert f"header.b={b_value[:8]}" in value


def test_hostile_from_headers_never_raise():
    weird = [
        "From: <>", "From: undisclosed-recipients:;", "From: a@[192.0.2.1]", "From: a@",
        "From: \"x@reject.example\" <>", "From: a@b\udcff.example", "From: a@\u00e9\u0301.example",
        "From: (comment) a@reject.example (x)", "From: a@" + "x" * 300 + ".example",
        "From: =?utf-8?q?a?= <a@reject.example>", "From: group: a@reject.example, b@none.example;",
        "From:\n\ta@reject.example",
    ]
    for header in weird:
        _, out = run(headers=header, ip="192.0.2.5", mail_from="<>", helo="h.example")
        assert not out.errors, (header, out.notes)
        assert out.auth["dmarc"]["result"] in ("pass", "fail", "none", "permerror", "temperror"), header


def test_idn_from_domain_is_looked_up_as_a_label():
    _, out = run(headers="From: a@b\u00fccher.example", ip="203.0.113.9")
    assert out.auth["dmarc"]["domain"] == "xn--bcher-kva.example"


@pytest.mark.parametrize("header", [
    "From: undisclosed-recipients:;", "From: <>", "From: alice", "From: a@", "From: a@localhost",
    "From: a@[192.0.2.1]",
])
def test_a_from_without_a_domain_is_dmarc_none_not_permerror(header: str) -> None:
    # RFC 7489 section 11.2: no aligned identifier could be extracted. multi_from does not apply.
    tx, out = run(headers=header, ip="192.0.2.5")
    assert out.auth["dmarc"]["result"] == "none", out.auth["dmarc"]
    assert out.verdict.action is Action.CONTINUE
    assert "dmarc=none" in ar_headers(tx)[0].value


def test_several_from_domains_stay_permerror() -> None:
    for header in ("From: a@reject.example, b@none.example", "From: a@reject.example\nFrom: b@none.example",
                   "Subject: no From at all"):
        _, out = run(headers=header, ip="192.0.2.5")
        assert out.auth["dmarc"]["result"] == "permerror", header
        assert out.auth["dmarc"]["override"] == "from_header"
