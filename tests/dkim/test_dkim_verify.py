"""Verification results: pass, tampering, RFC 8301 policy, l=, t=/x=, DNS and key record errors."""

from __future__ import annotations

import pytest
from dkimsupport import DATA, MSG, NOW, key, results, sign, signing_key, to_bytes, verify, zone

import dkim
from mailwarden.core.model import Header
from mailwarden.core.wire import parse_message
from mailwarden.dkim.sign import Signer
from mailwarden.dkim.verify import VerifyPolicy
from mailwarden.resolver.static import StaticZone


def dkimpy_sign(raw: bytes, **kw: object) -> bytes:
    sig = dkim.sign(raw, b"rsa", b"example.com", (DATA / "rsa.key").read_bytes(),
                    include_headers=[b"from", b"to", b"subject"], **kw)  # type: ignore[arg-type]
    return sig + raw


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"])
@pytest.mark.parametrize("name", ["rsa", "ed"])
def test_own_signatures_pass_and_match_dkimpy(canon: str, name: str) -> None:
    signed = sign(MSG, [signing_key(name)], canon)
    (r,) = verify(signed)
    assert (r.result, r.domain, r.selector) == ("pass", "example.com", name)
    assert r.algorithm == ("rsa-sha256" if name == "rsa" else "ed25519-sha256")
    assert r.key_bits == (2048 if name == "rsa" else 256)
    assert len(r.b) > 8
    assert dkim.verify(signed, dnsfunc=lambda n, timeout=5: b"".join(zone().txt(n.decode())))


def test_dkimpy_signatures_pass() -> None:
    assert results(dkimpy_sign(MSG)) == ["pass"]
    assert results(dkimpy_sign(MSG, canonicalize=(b"simple", b"simple"))) == ["pass"]


def test_every_signature_top_down_up_to_the_cap() -> None:
    other = signing_key("other", domain="example.net")
    signed = sign(sign(MSG, [signing_key("rsa")]), [signing_key("ed"), other])
    got = [(r.result, r.selector) for r in verify(signed)]
    assert got == [("pass", "ed"), ("pass", "other"), ("pass", "rsa")]
    assert [r.selector for r in verify(signed, policy=VerifyPolicy(max_signatures=2))] == ["ed", "other"]


TAMPER = {
    "body changed": (b"the numbers are in.", b"the numbers are out."),
    "signed header changed": (b"Subject: quarterly", b"Subject: Quarterly"),
    "oversigned header added": (b"X-Unsigned: yes\r\n", b"X-Unsigned: yes\r\nCc: eve@evil.test\r\n"),
    "second From added": (b"To: Bob", b"From: eve@evil.test\r\nTo: Bob"),
    "body appended": (b"Alice\r\n", b"Alice\r\nclick here\r\n"),
}


@pytest.mark.parametrize("change", TAMPER, ids=list(TAMPER))
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
def test_tampered_copies_fail(change: str, canon: str) -> None:
    signed = sign(MSG, [signing_key("rsa"), signing_key("ed")], canon)
    old, new = TAMPER[change]
    assert old in signed
    assert results(signed.replace(old, new, 1)) == ["fail", "fail"]


def test_unsigned_header_added_still_passes() -> None:
    signed = sign(MSG, [signing_key("rsa")])
    added = b"X-Unsigned: yes\r\nX-Spam: no\r\nReceived: x\r\n"
    assert results(signed.replace(b"X-Unsigned: yes\r\n", added)) == ["pass"]


def test_whitespace_change_fails_simple_passes_relaxed() -> None:
    for canon, want in (("simple/simple", "fail"), ("relaxed/relaxed", "pass")):
        signed = sign(MSG, [signing_key("rsa")], canon)
        assert results(signed.replace(b"Hello  Bob", b"Hello Bob")) == [want], canon
        assert results(signed.replace(b"Subject: quarterly  report", b"Subject:  quarterly report")) == [want]


def test_fail_reasons() -> None:
    signed = sign(MSG, [signing_key("rsa")])
    (body,) = verify(signed.replace(b"Alice\r\n", b"Mallory\r\n"))
    assert body.reason == "body hash did not verify"
    (head,) = verify(signed.replace(b"quarterly", b"annual"))
    assert head.reason == "signature did not verify"


def test_rsa_sha1_is_policy_unless_allowed() -> None:
    signed = dkimpy_sign(MSG, signature_algorithm=b"rsa-sha1")
    (r,) = verify(signed)
    assert (r.result, r.algorithm) == ("policy", "rsa-sha1") and "RFC 8301" in r.reason
    assert results(signed, policy=VerifyPolicy(allow_sha1=True)) == ["pass"]
    assert results(signed.replace(b"quarterly", b"annual")) == ["fail"]


def test_weak_rsa_key_floor_is_configurable() -> None:
    signed = sign(MSG, [signing_key("weak")])
    (r,) = verify(signed)
    assert (r.result, r.key_bits) == ("pass", 1024)
    (r,) = verify(signed, policy=VerifyPolicy(min_rsa_bits=2048))
    assert r.result == "policy" and "1024-bit" in r.reason


def test_body_length_extension_is_policy_by_default() -> None:
    signed = dkimpy_sign(MSG, length=True)
    assert b"l=" in signed
    assert results(signed) == ["pass"]
    extended = signed + b"Buy now!\r\n"
    (r,) = verify(extended)
    assert r.result == "policy" and "unsigned body bytes" in r.reason
    assert results(extended, policy=VerifyPolicy(on_body_length_extension="pass")) == ["pass"]
    assert results(signed.replace(b"Alice\r\n", b"")) == ["fail"]  # shorter than l=


def test_expiry_and_future_timestamp_with_clock_drift() -> None:
    raw = sign(MSG, [signing_key("rsa")], now=NOW)
    assert results(raw, now=NOW - 200) == ["pass"]  # t= 200 s ahead: within the 300 s drift
    (r,) = verify(raw, now=NOW - 1000)
    assert r.result == "permerror" and "future" in r.reason
    p = parse_message(MSG)
    (value,) = Signer("relaxed/relaxed", ("From",), (), expire=3600).sign(
        [signing_key("rsa")], p.headers, lambda: [p.body], NOW)
    expiring = to_bytes([Header("DKIM-Signature", value), *p.headers], p.body)
    assert results(expiring, now=NOW + 3600 + 299) == ["pass"]
    (r,) = verify(expiring, now=NOW + 3600 + 301)
    assert r.result == "permerror" and "expired" in r.reason


def with_selector(raw: bytes, selector: bytes) -> bytes:
    return raw.replace(b"s=rsa;", b"s=" + selector + b";", 1)


@pytest.mark.parametrize(("selector", "result", "reason"), [
    (b"slow", "temperror", "timed out"),
    (b"broken", "temperror", "SERVFAIL"),
    (b"missing", "permerror", "no key record"),
    (b"revoked", "permerror", "revoked"),
    (b"garbage", "permerror", "not base64"),
    (b"notdkim", "permerror", "not DKIM1"),
    (b"wrongtype", "permerror", "does not match"),
])
def test_key_lookup_problems(selector: bytes, result: str, reason: str) -> None:
    (r,) = verify(with_selector(sign(MSG, [signing_key("rsa")]), selector))
    assert (r.result, r.selector) == (result, selector.decode())
    assert reason in r.reason


def test_malformed_signatures_are_permerror_with_reason() -> None:
    # Never cryptographically checked: one label, permerror, as OpenDKIM (contrib/docs/dkim.md).
    signed = sign(MSG, [signing_key("rsa")])
    for old, new, reason in ((b"v=1;", b"v=2;", "version"), (b"a=rsa-sha256", b"a=rsa-md5", "algorithm"),
                             (b"d=example.com;", b"", "missing d=")):
        (r,) = verify(signed.replace(old, new, 1))
        assert r.result == "permerror", (old, r)
        assert reason in r.reason
    # A well-formed signature whose signed data changed was checked: fail.
    (r,) = verify(signed.replace(b"h=", b"h=to:", 1))
    assert r.result == "fail"
    (r,) = verify(signed.replace(b"c=relaxed/relaxed;", b"c=relaxed/relaxed; c=simple;", 1))
    assert r.result == "permerror" and "duplicate" in r.reason and r.domain == "example.com"


def test_key_records_are_looked_up_once_per_signature() -> None:
    z = StaticZone.from_files([DATA / "test.zone"], record_queries=True)
    verify(sign(MSG, [signing_key("rsa"), signing_key("ed")]), resolver=z)
    assert sorted(z.queries) == [("ed._domainkey.example.com", "TXT"), ("rsa._domainkey.example.com", "TXT")]


def test_private_key_matches_published_key() -> None:
    published = b"".join(zone().txt("rsa._domainkey.example.com"))
    assert key("rsa").public_record().split("p=")[1].encode() in published
