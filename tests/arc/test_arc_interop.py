"""Our ARC verifier against dkimpy's (`dkim.arc_verify`), and dkimpy against our seals.

Chains are built hop by hop: each hop verifies the chain it receives, may change the message (a
list footer, a subject tag), then seals with cv= from its verdict. Sealers are dkimpy
(`dkim.ARC.sign`) and our ArcSealer, mixed. dkimpy 1.1's ARC code knows only rsa-sha256, so
chains with an Ed25519 hop are compared with that documented difference.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest
from arcsupport import MSG, dkim_signed, dkimpy_hop, dnsfunc, forced_hop, our_hop, ours, signing_key, theirs

import dkim

FOOTER = (b"attached.\r\n", b"attached.\r\n-- \r\nlist footer: unsubscribe at list.example.org\r\n")
TAG = (b"Subject: ", b"Subject: [list] ")
SEALERS = ("forwarder.example", "list.example.org", "relay.example", "mix.example", "mx.example.com")


def footer(raw: bytes) -> bytes:
    return raw.replace(*FOOTER, 1)


def subject_tag(raw: bytes) -> bytes:
    return raw.replace(*TAG, 1)


def chain(hops: int, sealer: Callable[[int], str] = lambda i: "dkimpy",
          modify: Callable[[int], Callable[[bytes], bytes] | None] = lambda i: None) -> bytes:
    raw = dkim_signed()
    for i in range(1, hops + 1):
        domain = SEALERS[(i - 1) % len(SEALERS)]
        keyname = "other" if domain == "mix.example" else "rsa"
        hop = dkimpy_hop if sealer(i) == "dkimpy" else our_hop
        raw = hop(raw, domain, keyname, modify=modify(i))
    return raw


def agree(raw: bytes) -> str:
    mine = ours(raw)
    assert mine.result == theirs(raw), mine
    return mine.result


def test_no_arc_headers_is_none_for_both() -> None:
    assert agree(dkim_signed()) == "none"
    assert agree(MSG) == "none"


@pytest.mark.parametrize("hops", [1, 2, 3, 4, 5])
def test_dkimpy_chains_of_1_to_5_hops_pass(hops: int) -> None:
    # Every hop after the first changes the message, as a list does; the chain still passes.
    raw = chain(hops, modify=lambda i: footer if i == 2 else subject_tag if i == 4 else None)
    assert agree(raw) == "pass"
    result = ours(raw)
    assert [i.instance for i in result.instances] == list(range(1, hops + 1))
    assert all(i.seal == "pass" for i in result.instances)
    # oldest-pass: the lowest AMS that still verifies; the footer (hop 2) broke AMS 1.
    assert result.oldest_pass == (0 if hops == 1 else 2 if hops < 4 else 4)


@pytest.mark.parametrize("hops", [1, 2, 3, 4, 5])
def test_mixed_chains_ours_and_dkimpy(hops: int) -> None:
    for first in ("ours", "dkimpy"):
        other = "dkimpy" if first == "ours" else "ours"
        raw = chain(hops, sealer=lambda i, a=first, b=other: a if i % 2 else b,  # type: ignore[misc]
                    modify=lambda i: footer if i == 3 else None)
        assert agree(raw) == "pass", first


TAMPER = {
    "body": lambda r: r.replace(b"the notes are", b"the NOTES are"),
    "body-appended": lambda r: r + b"P.S. send money\r\n",
    "signed-header": lambda r: r.replace(b"Subject: ", b"Subject: RE: ", 1),
    "added-from": lambda r: b"From: Mallory <m@evil.example>\r\n" + r,
    "aar-1": lambda r: r.replace(b"spf=pass smtp.mailfrom=alice", b"spf=fail smtp.mailfrom=alice", 1),
    "seal-2-b": lambda r: _flip_b(r, b"ARC-Seal: i=2"),
    "ams-3-b": lambda r: _flip_b(r, b"ARC-Message-Signature: i=3"),
    "seal-1-cv": lambda r: r.replace(b"cv=none", b"cv=pass", 1),
    "seal-3-cv": lambda r: r.replace(b"i=3; cv=pass", b"i=3; cv=none", 1),
    "missing-set-2": lambda r: _drop_set(r, 2),
    "missing-seal-3": lambda r: _drop(r, b"ARC-Seal", 3),
    "duplicate-ams-2": lambda r: _duplicate(r, b"ARC-Message-Signature", 2),
    "instance-gap": lambda r: re.sub(rb"i=3([;\r])", rb"i=4\1", r),
    "bare-cr-in-ams-2": lambda r: _bare_cr(r, b"ARC-Message-Signature: i=2"),
}


def _bare_cr(raw: bytes, prefix: bytes) -> bytes:
    """A fold's LF dropped: a bare CR in the value, which relaxed canonicalization keeps."""
    fold = raw.index(b"\r\n", raw.index(prefix))
    return raw[:fold + 1] + raw[fold + 2:]


def _headers(raw: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


def _join(fields: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(fields) + b"\r\n\r\n" + body


def _is(field: bytes, name: bytes, i: int) -> bool:
    return field.lower().startswith(name.lower() + b":") and re.search(rb"\bi=%d;" % i, field) is not None


def _drop(raw: bytes, name: bytes, i: int) -> bytes:
    fields, body = _headers(raw)
    return _join([f for f in fields if not _is(f, name, i)], body)


def _drop_set(raw: bytes, i: int) -> bytes:
    for name in (b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results"):
        raw = _drop(raw, name, i)
    return raw


def _duplicate(raw: bytes, name: bytes, i: int) -> bytes:
    fields, body = _headers(raw)
    extra = [f for f in fields if _is(f, name, i)]
    return _join(extra + fields, body)


def _flip_b(raw: bytes, prefix: bytes) -> bytes:
    start = raw.index(prefix)
    b = raw.index(b"b=", raw.index(b"; b=", start) if b"; b=" in raw[start:start + 400] else start) + 10
    flipped = b"A" if raw[b:b + 1] != b"A" else b"B"
    return raw[:b] + flipped + raw[b + 1:]


@pytest.mark.parametrize("case", list(TAMPER), ids=list(TAMPER))
def test_tampered_chains_fail_for_both(case: str) -> None:
    raw = chain(3, sealer=lambda i: "ours" if i == 2 else "dkimpy")
    assert agree(raw) == "pass"
    tampered = TAMPER[case](raw)
    assert tampered != raw
    assert agree(tampered) == "fail"


def test_a_hop_that_changes_the_message_before_verifying_seals_cv_fail() -> None:
    # The second hop sees a broken chain (the body changed on the way), so seals cv=fail;
    # later hops keep it failed (dkimpy reports None there: "the chain is terminated").
    raw = chain(1)
    broken = footer(raw)
    for hop in (dkimpy_hop, our_hop):
        sealed = hop(broken, "list.example.org")
        assert b"cv=fail" in sealed
        assert agree(sealed) == "fail"
        assert ours(sealed).reason == "ARC-Seal i=2 says cv=fail"  # RFC 8617 5.2 step 2, before crypto
        assert agree(our_hop(sealed, "relay.example")) == "fail"


def test_wrong_cv_from_a_sealer_that_lies() -> None:
    relay = signing_key("rsa", "relay.example")
    assert agree(forced_hop(dkim_signed(), relay, "pass")) == "fail"  # i=1 must say none
    assert agree(forced_hop(chain(1), relay, "none")) == "fail"  # i=2 must say pass
    assert agree(forced_hop(chain(1), relay, "pass")) == "pass"


def test_ed25519_hops_verify_with_us_dkimpy_knows_only_rsa() -> None:
    raw = our_hop(dkim_signed(), "forwarder.example", "ed")
    raw = our_hop(raw, "list.example.org", "rsa", modify=footer)
    raw = dkimpy_hop(raw, "relay.example", arc="pass")
    assert ours(raw).result == "pass"
    assert [i.instance for i in ours(raw).instances if i.seal == "pass"] == [1, 2, 3]
    cv, _, why = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    assert cv == b"fail" and "unknown signature algorithm" in why  # dkimpy 1.1: rsa-sha256 only
    assert ours(TAMPER["body"](raw)).result == "fail"
    assert ours(_flip_b(raw, b"ARC-Seal: i=1")).result == "fail"


def test_random_chains_agree_with_dkimpy() -> None:
    rng = random.Random(14)
    mods = [None, footer, subject_tag]
    for _ in range(25):
        hops = rng.randint(1, 5)
        sealers = [rng.choice(("ours", "dkimpy")) for _ in range(hops)]
        changes = [rng.choice(mods) for _ in range(hops)]
        raw = chain(hops, sealer=lambda i, s=sealers: s[i - 1],  # type: ignore[misc]
                    modify=lambda i, c=changes: c[i - 1] if i > 1 else None)  # type: ignore[misc]
        if rng.random() < 0.5:
            case = rng.choice([c for c in TAMPER if not re.search(r"-[23]", c) or hops >= 3])
            raw = TAMPER[case](raw)
        agree(raw)


def test_header_order_of_our_seal() -> None:
    raw = our_hop(dkim_signed(), "forwarder.example")
    names = [f.split(b":")[0] for f in _headers(raw)[0]][:4]
    assert names == [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results",
                     b"Authentication-Results"]


def test_random_byte_damage_in_the_chain_agrees_with_dkimpy() -> None:
    # A few bytes of the ARC headers replaced at random: never a traceback, and dkimpy's verdict
    # (its exceptions on malformed sets, e.g. "Incomplete ARC set", count as fail). A bare CR
    # in a value is not whitespace to relaxed canonicalization (dkim/canon.py had it so).
    rng = random.Random(8617)
    raw = our_hop(dkimpy_hop(dkim_signed(), "forwarder.example"), "list.example.org")
    end = raw.index(b"\r\nAuthentication-Results")
    for _ in range(150):
        damaged = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(end)] = rng.choice(b"abcXYZ019;=: \t\r\n/+i")
        mine = ours(bytes(damaged))
        try:
            expected = theirs(bytes(damaged))
        except (dkim.DKIMException, ValueError):  # binascii.Error on a damaged b= is a ValueError
            expected = "fail"
        assert mine.result == expected, (bytes(damaged), mine)
