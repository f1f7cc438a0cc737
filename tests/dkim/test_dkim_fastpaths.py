"""The per-message shortcuts of signing and verifying against the plain computations they
replace: cached signature templates, the tag-list parser's name cache, the b= stripper."""

from __future__ import annotations

import random
import re

import pytest
from dkimsupport import NOW, results, signing_key, to_bytes

from mailwarden.core.model import Header
from mailwarden.core.wire import parse_message
from mailwarden.dkim.canon import canon_header
from mailwarden.dkim.sign import Signer, _fold
from mailwarden.dkim.tags import TagError, parse_tags, strip_b_value
from mailwarden.dkim.verify import _enc

# RFC 6376 3.7's "b= with its value removed", as one regex: the reference for strip_b_value.
B_VALUE = re.compile(rb"(^|;)([ \t\r\n]*b[ \t\r\n]*=)[^;]*")
TAG_NAME = re.compile(rb"^[A-Za-z][A-Za-z0-9_]*$")
NAMES = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To", "X-Other")


def reference_tags(value: bytes, lenient: bool = False) -> dict[str, bytes]:
    """parse_tags without its name cache: RFC 6376 3.2 one part at a time."""
    tags: dict[str, bytes] = {}
    for part in value.split(b";"):
        if not part.strip(b" \t\r\n"):
            continue
        name, eq, val = part.partition(b"=")
        name = name.strip(b" \t\r\n")
        if not eq or not TAG_NAME.match(name):
            if lenient:
                continue
            raise TagError(f"malformed tag {part.strip()[:30]!r}")
        if name.decode("ascii") in tags:
            if lenient:
                continue
            raise TagError(f"duplicate tag {name.decode('ascii')}=")
        tags[name.decode("ascii")] = val.strip(b" \t\r\n")
    return tags


def outcome(parse, value: bytes, lenient: bool):  # type: ignore[no-untyped-def]
    try:
        return parse(value, lenient)
    except TagError as exc:
        return f"TagError: {exc}"


def test_strip_b_value_matches_the_regex_on_random_tag_lists() -> None:
    rnd = random.Random(3)
    pieces = [b"b", b"=", b";", b" ", b"\t", b"\r\n", b"a", b"bh", b"x", b"\n", b"B", b"\x0b"]
    for _ in range(50000):
        value = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 14)))
        assert strip_b_value(value) == B_VALUE.sub(rb"\1\2", value, count=1), value


@pytest.mark.parametrize("value, stripped", [
    (b"v=1; b=abc; bh=x", b"v=1; b=; bh=x"),
    (b"b=abc;bh=1", b"b=;bh=1"),
    (b"v=1; bh=x;\r\n\tb = ab\r\n\tcd", b"v=1; bh=x;\r\n\tb ="),
    (b"v=1; bh=x", b"v=1; bh=x"),
])
def test_strip_b_value_examples(value: bytes, stripped: bytes) -> None:
    assert strip_b_value(value) == stripped


def test_parse_tags_matches_the_plain_parser_on_random_tag_lists() -> None:
    rnd = random.Random(5)
    pieces = [b"a", b"b", b"h", b"9", b"_", b"=", b";", b" ", b"\t", b"\r\n", b"x=1", b"\x0c", b"\xff", b";;"]
    for _ in range(30000):
        value = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        for lenient in (False, True):
            assert outcome(parse_tags, value, lenient) == outcome(reference_tags, value, lenient), value


def plain_value(signer: Signer, key, names: list[str], now: float, bh: str) -> str:  # type: ignore[no-untyped-def]
    """The signature value up to b= the way it was built before templates: fold every tag."""
    tags = [("v", "1"), ("a", key.key.algorithm), ("c", signer.canonicalization), ("d", key.domain),
            ("s", key.selector), ("t", str(int(now)))]
    if signer.expire:
        tags.append(("x", str(int(now) + signer.expire)))
    tags += [("h", ":".join(names)), ("bh", bh)]
    return _fold(tags) + "\n\tb="


@pytest.mark.parametrize("selector", ["rsa", "x" * 70, "odd" + "\x01" * 12 + "\x03" * 44])
def test_template_values_equal_folding_every_tag(selector: str) -> None:
    """Random header sets, t= of 5 to 11 digits, with and without x=: the filled template is the
    value folded from scratch (a selector holding the stand-ins is folded from scratch too)."""
    rnd = random.Random(len(selector))
    key = signing_key("rsa", selector)
    for _ in range(60):
        canon = rnd.choice(["relaxed", "simple"]) + "/" + rnd.choice(["relaxed", "simple"])
        signer = Signer(canon, ("From", *rnd.sample(NAMES, rnd.randint(0, 7))), tuple(rnd.sample(NAMES, 2)),
                        rnd.choice([0, 3600]))
        headers = [Header(rnd.choice(NAMES), f" value {j}") for j in range(rnd.randint(0, 12))]
        now = rnd.choice([99999.0, 1.8e9, 2e10, NOW])
        value = signer.sign([key], headers, lambda: iter([b"body\r\n"]), now)[0]
        bh = re.search(r"bh=([^;]+);", value)
        assert bh is not None
        head = value[: value.index("\n\tb=") + 4]
        assert head == plain_value(signer, key, signer.header_list(headers), now, bh.group(1))


def test_template_signatures_verify_for_every_key_and_canonicalization() -> None:
    """The canonical form in the template is the one signed: each signature passes."""
    msg = (b"From: a@example.com\r\nTo: b@example.org\r\nSubject:  hi \r\n\tthere\r\n\r\n"
           b"body  text \r\n\r\n")
    parsed = parse_message(msg)
    keys = [signing_key("rsa"), signing_key("ed")]
    for canon in ("relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"):
        signer = Signer(canon, ("From", "To", "Subject"), ("From",), 3600)
        for now in (NOW - 1, NOW):  # the second message fills the cached template
            values = signer.sign(keys, parsed.headers, lambda: iter([parsed.body]), now)
            signed = to_bytes([Header("DKIM-Signature", v) for v in values] + parsed.headers, parsed.body)
            assert results(signed) == ["pass", "pass"], canon


def test_canonical_template_is_the_canonical_value() -> None:
    signer = Signer("relaxed/relaxed", ("From",))
    key = signing_key("ed")
    names = ("from",)
    template = signer._template(key, names, 10, 0)
    assert template is not None
    value, canonical = template.fill("1800000000", "", "A" * 44)
    assert canonical == canon_header("relaxed", b"DKIM-Signature", _enc(value))[:-2]
