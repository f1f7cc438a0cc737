"""DMARC record parsing (RFC 7489 section 6.3, 6.6.3; RFC 9989 tags)."""

from __future__ import annotations

import pytest

from mailwarden.dmarc.record import RecordError, is_dmarc, parse


def test_minimal_record_defaults():
    r = parse(b"v=DMARC1; p=reject")
    assert (r.p, r.sp, r.np, r.adkim, r.aspf, r.pct, r.psd, r.t) == ("reject", "", "", "r", "r", 100, "", "n")
    assert r.subdomain_policy() == "reject" and r.nonexistent_policy() == "reject"


def test_all_tags():
    r = parse("v=DMARC1;p=none; sp=quarantine ;np=reject; adkim=s; aspf=s; pct=20; psd=y; t=y;"
              " rua=mailto:a@x.example,mailto:b@y.example; ruf=mailto:f@x.example; fo=1")
    assert (r.p, r.sp, r.np, r.adkim, r.aspf, r.pct, r.psd, r.t) == (
        "none", "quarantine", "reject", "s", "s", 20, "y", "y")
    assert r.rua == ("mailto:a@x.example", "mailto:b@y.example")
    assert r.subdomain_policy() == "quarantine" and r.nonexistent_policy() == "reject"


def test_np_falls_back_to_sp_then_p():
    assert parse("v=DMARC1; p=none; sp=reject").nonexistent_policy() == "reject"
    assert parse("v=DMARC1; p=quarantine").nonexistent_policy() == "quarantine"


@pytest.mark.parametrize("text", ["v=DMARC1", "v=DMARC1; p=bogus", "v=DMARC1; p=", "v=DMARC1; sp=none",
                                  "v=DMARC1; p=reject; sp=maybe", "v=DMARC1; p=reject; sp=maybe; rua=junk"])
def test_unusable_p_or_sp_without_rua_is_an_error(text):
    with pytest.raises(RecordError):
        parse(text)


def test_bad_p_with_valid_rua_counts_as_none():
    r = parse("v=DMARC1; p=bogus; rua=mailto:x@example.com")
    assert r.p == "none" and r.problems


def test_lenient_about_optional_tags_and_case_of_values():
    r = parse("v=DMARC1; p=REJECT; adkim=x; aspf=S; pct=200; np=what; foo=bar; ; junk; t=maybe")
    assert (r.p, r.adkim, r.aspf, r.pct, r.np, r.t) == ("reject", "r", "s", 100, "", "n")
    assert len(r.problems) == 5


def test_pct_bounds():
    assert parse("v=DMARC1; p=reject; pct=0").pct == 0
    assert parse("v=DMARC1; p=reject; pct=100").pct == 100
    assert parse("v=DMARC1; p=reject; pct=-1").pct == 100
    assert parse("v=DMARC1; p=reject; pct=5.5").pct == 100


def test_repeated_tag_first_wins():
    assert parse("v=DMARC1; p=none; p=reject").p == "none"


@pytest.mark.parametrize("text,expected", [
    (b"v=DMARC1; p=none", True),
    (b"v=DMARC1", True),
    (b"v = DMARC1 ;p=none", True),
    (b"v=dmarc1; p=none", False),  # the value must match precisely
    (b"V=DMARC1; p=none", False),
    (b"p=none; v=DMARC1", False),  # v must be the first tag
    (b"v=DMARC10; p=none", False),
    (b"v=spf1 -all", False),
    (b"", False),
])
def test_is_dmarc(text, expected):
    assert is_dmarc(text) is expected


def test_not_dmarc_raises():
    with pytest.raises(RecordError):
        parse("v=spf1 -all")


def test_rfc9989_rules():
    assert parse("v=DMARC1", bis=True).p == "none"
    assert parse("v=DMARC1; sp=reject", bis=True).subdomain_policy() == "reject"
    with pytest.raises(RecordError):
        parse("v=DMARC1; p=reject; np=maybe", bis=True)
    assert parse("v=DMARC1; p=reject; np=maybe; rua=mailto:a@b.example", bis=True).p == "none"
    assert parse("v=DMARC1; p=reject; np=maybe").np == ""  # RFC 7489 knows no np: ignored
    with pytest.raises(RecordError):
        parse("v=DMARC1; p=junk", bis=True)
