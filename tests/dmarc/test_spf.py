"""SPF through pyspf with every lookup going to our Resolver port (StaticZone here)."""

from __future__ import annotations

import pytest
from dmarcsupport import DATA
from tests.support.builders import transaction

from mailwarden.core.auth import SpfHelo, SpfResult
from mailwarden.core.decisions import Action, Outcome
from mailwarden.core.model import Direction
from mailwarden.resolver.static import StaticZone
from mailwarden.spf.check import SpfCheck
from mailwarden.spf.query import check_spf

ZONE = StaticZone.from_files([DATA / "spf.zone"])


@pytest.mark.parametrize("ip,domain,result", [
    ("192.0.2.7", "pass.example", "pass"),
    ("2001:db8::25", "pass.example", "pass"),
    ("203.0.113.1", "pass.example", "fail"),
    ("198.51.100.7", "mx.example", "pass"),
    ("198.51.100.8", "mx.example", "fail"),
    ("192.0.2.7", "inc.example", "pass"),
    ("203.0.113.1", "inc.example", "softfail"),
    ("203.0.113.1", "soft.example", "softfail"),
    ("203.0.113.1", "neutral.example", "neutral"),
    ("203.0.113.1", "nospf.example", "none"),
    ("203.0.113.1", "two.example", "permerror"),
    ("203.0.113.1", "syntax.example", "permerror"),
    ("203.0.113.1", "loop.example", "permerror"),
    ("203.0.113.1", "void.example", "permerror"),  # more than two void lookups (section 4.6.4)
    ("203.0.113.1", "slow.example", "temperror"),
    ("203.0.113.1", "tempinc.example", "temperror"),
])
def test_results(ip, domain, result):
    r = check_spf(ZONE, ip, f"user@{domain}", "client.example")
    assert (r.result, r.domain, r.identity) == (result, domain, "mailfrom")
    assert r.explanation or result == "none"


def test_explanation_from_exp_record():
    r = check_spf(ZONE, "203.0.113.1", "u@exp.example", "h")
    assert r.result == "fail"
    assert r.explanation == "203.0.113.1 is not one of exp.example's designated mail servers"


def test_helo_identity():
    assert check_spf(ZONE, "203.0.113.9", "", "helo.example", "helo").result == "pass"
    assert check_spf(ZONE, "203.0.113.8", "", "helo.example", "helo").result == "fail"
    r = check_spf(ZONE, "203.0.113.8", "", "[203.0.113.8]", "helo")
    assert (r.result, r.identity) == ("none", "helo")


def test_unusable_client_address_is_permerror_not_traceback():
    assert check_spf(ZONE, "not-an-ip", "u@pass.example", "h").result == "permerror"


def run(stage, **kw):
    tx = transaction(**kw)
    return stage.run(tx, Outcome())


def test_stage_mail_from_and_helo_facts():
    res = run(SpfCheck(ZONE), mail_from="<u@pass.example>", ip="192.0.2.7", helo="helo.example")
    spf, helo = res.facts.get(SpfResult), res.facts.get(SpfHelo)
    assert spf is not None and helo is not None
    assert spf.result == "pass" and helo.result.result == "fail"
    assert res.auth["spf"]["result"] == "pass" and res.auth["spf"]["domain"] == "pass.example"
    assert res.verdict is None


def test_stage_null_sender_uses_helo():
    res = run(SpfCheck(ZONE, check_helo=False), mail_from="<>", ip="203.0.113.9", helo="helo.example")
    spf = res.facts.get(SpfResult)
    assert spf is not None
    assert (spf.result, spf.identity, spf.domain) == ("pass", "helo", "helo.example")


def test_stage_enforcement_is_optional():
    kw = dict(mail_from="<u@pass.example>", ip="203.0.113.1", helo="client.example")
    assert run(SpfCheck(ZONE), **kw).verdict is None
    v = run(SpfCheck(ZONE, reject_on_fail=True), **kw).verdict
    assert v is not None and v.action is Action.REJECT
    assert (v.reply.code, v.reply.dsn) == ("550", "5.7.23")
    assert "pass.example" in v.reply.text
    # softfail, temperror never reject
    enforcing = SpfCheck(ZONE, reject_on_fail=True)
    assert run(enforcing, mail_from="<u@soft.example>", ip="203.0.113.1").verdict is None
    assert run(enforcing, mail_from="<u@slow.example>", ip="203.0.113.1").verdict is None


def test_stage_helo_enforcement():
    v = run(SpfCheck(ZONE, reject_helo_fail=True), mail_from="<u@pass.example>", ip="192.0.2.7",
            helo="badhelo.example").verdict
    assert v is not None and v.reply.dsn == "5.7.23" and "badhelo.example" in v.reply.text


def test_stage_skips_outbound():
    assert not SpfCheck(ZONE).applies(transaction(direction=Direction.OUTBOUND))
    assert SpfCheck(ZONE).applies(transaction())
