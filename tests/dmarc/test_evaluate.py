"""DMARC evaluation: discovery, p/sp/np, alignment, pct, RFC 9989 tree walk, DNS failures."""

from __future__ import annotations

import pytest
from dmarcsupport import DATA

from mailwarden.core.auth import DkimResult, DkimStatus, SpfResult, SpfStatus
from mailwarden.dmarc import psl
from mailwarden.dmarc.discovery import discover_walk, walk_org_domain, walk_targets
from mailwarden.dmarc.evaluate import Evaluator, aligned
from mailwarden.resolver.static import StaticZone

ZONE = StaticZone.from_files([DATA / "policies.zone"])


def ev(tree_walk=False, draw=0.0, private=True):
    return Evaluator(ZONE, psl.load(private=private), tree_walk, lambda: draw)


def dk(domain, result="pass"):
    return DkimResult(DkimStatus(result), domain, "sel", "rsa-sha256")


def spf(result, domain):
    return SpfResult(SpfStatus(result), domain)


NOTHING: tuple[DkimResult, ...] = ()


@pytest.mark.parametrize("domain,policy,disposition", [
    ("reject.example", "reject", "reject"),
    ("quar.example", "quarantine", "quarantine"),
    ("none.example", "none", "none"),
    ("exists.org.example", "reject", "reject"),  # sp= for an existing subdomain
    ("nonexistent.org.example", "quarantine", "quarantine"),  # np= for a domain that does not exist
    ("org.example", "none", "none"),  # p= for the organizational domain itself
    ("sub.nosp.example", "quarantine", "quarantine"),  # no sp=: p=
    ("gone.nosp.example", "quarantine", "quarantine"),  # no np=, no sp=: p=
    ("mail.example.co.uk", "quarantine", "quarantine"),  # org domain under co.uk, its sp=
    ("lenient.example", "reject", "reject"),
])
def test_policy_applied_on_fail(domain, policy, disposition):
    r = ev().evaluate(domain, NOTHING, None)
    assert (r.result, r.policy, r.disposition) == ("fail", policy, disposition)
    assert r.dkim_aligned == "fail" and r.spf_aligned == "fail"


@pytest.mark.parametrize("domain,result", [
    ("nodmarc.example", "none"),
    ("multi.example", "none"),  # several records: no DMARC processing (6.6.3 step 5)
    ("notdmarc.example", "none"),
    ("notfirst.example", "none"),
    ("bad.example", "permerror"),
    ("badsp.example", "permerror"),
])
def test_no_policy(domain, result):
    r = ev().evaluate(domain, NOTHING, None)
    assert (r.result, r.disposition, r.policy) == (result, "none", None)


def test_bad_p_with_rua_is_none_policy():
    r = ev().evaluate("badrua.example", NOTHING, None)
    assert (r.result, r.policy, r.disposition) == ("fail", "none", "none")


def test_split_txt_strings_are_joined():
    assert ev().evaluate("split.example", NOTHING, None).policy == "reject"


@pytest.mark.parametrize("domain", ["slow.example", "broken.example", "a.slow.example"])
def test_dns_failure_is_temperror_never_fail(domain):
    r = ev().evaluate(domain, NOTHING, None)
    assert r.result == "temperror" and r.disposition == "none"


def test_relaxed_alignment_dkim_and_spf():
    e = ev()
    assert e.evaluate("reject.example", (dk("mail.reject.example"),), None).result == "pass"
    assert e.evaluate("news.reject.example", (dk("reject.example"),), None).dkim_aligned == "pass"
    spf_result = spf("pass", "bounce.reject.example")
    r = e.evaluate("reject.example", NOTHING, spf_result)
    assert (r.result, r.spf_aligned, r.dkim_aligned) == ("pass", "pass", "fail")


def test_failing_or_unaligned_signatures_do_not_count():
    e = ev()
    r = e.evaluate("reject.example", (dk("reject.example", "fail"), dk("other.example")), None)
    assert r.result == "fail"
    # Any one passing aligned signature suffices.
    r = e.evaluate("reject.example", (dk("other.example"), dk("reject.example")), None)
    assert r.result == "pass"


def test_spf_must_pass_to_align():
    for res in ("fail", "softfail", "neutral", "none", "permerror"):
        assert ev().evaluate("reject.example", NOTHING, spf(res, "reject.example")).result == "fail"
    # A temporary failure of an aligned identifier is not a fail (see test_dns_temperror.py).
    unsure = ev().evaluate("reject.example", NOTHING, spf("temperror", "reject.example"))
    assert unsure.result == "temperror"
    assert ev().evaluate("reject.example", NOTHING, spf("temperror", "other.example")).result == "fail"


def test_strict_alignment():
    e = ev()
    assert e.evaluate("strict.example", (dk("mail.strict.example"),), None).result == "fail"
    assert e.evaluate("strict.example", NOTHING, spf("pass", "mail.strict.example")).result == "fail"
    assert e.evaluate("strict.example", (dk("STRICT.example."),), None).result == "pass"
    assert e.evaluate("strict.example", NOTHING, spf("pass", "strict.example")).result == "pass"


def test_relaxed_alignment_stops_at_public_suffixes():
    org = lambda d: psl.org_domain(d, psl.load())  # noqa: E731
    assert not aligned("example.co.uk", "other.co.uk", "r", org)
    assert aligned("a.example.co.uk", "b.example.co.uk", "r", org)
    assert not aligned("a.github.io", "b.github.io", "r", org)
    assert not aligned("example.com", "", "r", org)


def test_private_suffix_decides_where_policy_is_found():
    # github.io is in the PSL's private section: someone.github.io is its own org domain.
    assert ev().evaluate("someone.github.io", NOTHING, None).result == "none"
    assert ev(private=False).evaluate("someone.github.io", NOTHING, None).policy == "reject"


@pytest.mark.parametrize("draw,disposition,override", [(0.0, "reject", ""), (0.4999, "reject", ""),
                                                       (0.5, "quarantine", "sampled_out"),
                                                       (0.99, "quarantine", "sampled_out")])
def test_pct_sampling(draw, disposition, override):
    r = ev(draw=draw).evaluate("pct.example", NOTHING, None)
    assert (r.policy, r.disposition, r.override) == ("reject", disposition, override)


def test_pct_zero_quarantine_becomes_none():
    r = ev(draw=0.0).evaluate("pctq.example", NOTHING, None)
    assert (r.policy, r.disposition, r.override) == ("quarantine", "none", "sampled_out")


def test_pct_not_drawn_for_passing_mail():
    calls = []
    e = Evaluator(ZONE, psl.load(), False, lambda: calls.append(1) or 0.0)
    e.evaluate("pct.example", (dk("pct.example"),), None)
    assert calls == []


def test_walk_targets():
    assert walk_targets("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com", "com"]
    deep = "1.2.3.4.5.6.7.8.9.example"
    assert walk_targets(deep) == [deep, "4.5.6.7.8.9.example", "5.6.7.8.9.example", "6.7.8.9.example",
                                  "7.8.9.example", "8.9.example", "9.example", "example"]
    assert walk_targets("com") == ["com"]


def test_tree_walk_psd_and_org_domain():
    e = ev(tree_walk=True)
    r = e.evaluate("deep.brand.psd.example", NOTHING, None)
    assert (r.policy_domain, r.org_domain, r.policy) == ("psd.example", "brand.psd.example", "quarantine")
    assert walk_org_domain(ZONE, "deep.brand.psd.example") == "brand.psd.example"
    # psd=y makes sibling brands unaligned although they share a parent.
    assert e.evaluate("brand.psd.example", (dk("other.psd.example"),), None).dkim_aligned == "fail"
    assert e.evaluate("brand.psd.example", (dk("deep.brand.psd.example"),), None).dkim_aligned == "pass"


def test_tree_walk_policy_of_the_org_domain_not_the_nearest_record():
    # RFC 9989 4.10.1: author domain, else Organizational Domain (the highest record, 4.10.2).
    d = discover_walk(ZONE, "x.a.b.walk.example")
    assert (d.policy_domain, d.org_domain, d.record.p if d.record else None) == (
        "walk.example", "walk.example", "reject")


def test_tree_walk_org_domain_record_beats_the_psd():
    d = discover_walk(ZONE, "x.own.psd.example")
    assert (d.policy_domain, d.org_domain) == ("own.psd.example", "own.psd.example")
    r = ev(tree_walk=True).evaluate("x.own.psd.example", NOTHING, None)
    assert (r.policy, r.disposition) == ("none", "none")


def test_tree_walk_psd_at_the_author_domain_is_not_a_boundary():
    d = discover_walk(ZONE, "selfpsd.example")
    assert (d.policy_domain, d.org_domain, d.record.p if d.record else None) == (
        "selfpsd.example", "selfpsd.example", "quarantine")


def test_rfc9989_missing_p_is_none_and_bad_np_is_unusable():
    assert ev().evaluate("nop.example", NOTHING, None).result == "permerror"
    r = ev(tree_walk=True).evaluate("nop.example", NOTHING, None)
    assert (r.result, r.policy) == ("fail", "none")
    assert ev().evaluate("badnp.example", NOTHING, None).policy == "reject"  # 7489: np unknown, ignored
    assert ev(tree_walk=True).evaluate("badnp.example", NOTHING, None).result == "permerror"


def test_tree_walk_finds_policy_under_a_public_suffix_listed_name():
    # With the tree walk the PSL plays no part: someone.github.io inherits github.io's policy.
    r = ev(tree_walk=True).evaluate("someone.github.io", NOTHING, None)
    assert (r.policy_domain, r.policy) == ("github.io", "reject")


def test_tree_walk_ignores_pct_and_honours_t():
    r = ev(tree_walk=True, draw=0.99).evaluate("pct.example", NOTHING, None)
    assert r.disposition == "reject"
    r = ev(tree_walk=True).evaluate("testing.example", NOTHING, None)
    assert (r.policy, r.disposition, r.override) == ("reject", "quarantine", "testing")
    r = ev().evaluate("testing.example", NOTHING, None)  # RFC 7489 mode knows no t=
    assert r.disposition == "reject"


def test_tree_walk_at_most_eight_queries():
    zone = StaticZone.from_files([DATA / "policies.zone"], record_queries=True)
    discover_walk(zone, "1.2.3.4.5.6.7.8.9.10.l8.example")
    assert len([q for q in zone.queries if q[1] == "TXT"]) == 8


def test_the_result_carries_what_a_report_row_needs():
    # Aggregate report rows come from this fact: published policy, alignment per identifier.
    r = ev().evaluate("reject.example", (dk("mail.reject.example"), dk("other.example", "fail")),
                      spf("pass", "bounce.other.example"))
    assert r.result == "pass" and r.record is not None and r.record.p == "reject"
    assert r.policy_domain == "reject.example"
    assert [(i.method, i.domain, i.result, i.aligned) for i in r.identifiers] == [
        ("dkim", "mail.reject.example", "pass", True),
        ("dkim", "other.example", "fail", False),
        ("spf", "bounce.other.example", "pass", False),
    ]
    assert r.identifiers[0].selector == "sel" and r.identifiers[2].scope == "mailfrom"


def test_override_reasons_map_to_report_types():
    from mailwarden.dmarc.result import Override

    assert Override.SAMPLED_OUT.report_type == "sampled_out"
    assert Override.EXEMPT_NETWORK.report_type == "local_policy"
    assert Override.NONE.report_type == ""
    assert all(o.report_type in ("", "sampled_out", "local_policy", "other") for o in Override)
