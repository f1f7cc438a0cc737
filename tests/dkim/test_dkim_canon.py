"""Canonicalization: same bytes as dkimpy, whatever the chunking; streaming keeps memory flat."""

from __future__ import annotations

import hashlib
import random
import tracemalloc

import dkim.canonicalization as dc
import pytest

from mailwarden.core.model import Body
from mailwarden.dkim.canon import BodyCanonicalizer, body_hashes, canon_body, relaxed_header, simple_header

PIECES = [b"a", b"b c", b" ", b"\t", b"  ", b"\r\n", b"\r\n", b"\r\n\r\n", b" \r\n", b"\t\r\n", b"\xc3\xa9"]


def chunked(body: bytes, relaxed: bool, rnd: random.Random) -> bytes:
    out: list[bytes] = []

    class Sink:
        def update(self, b: bytes) -> None:
            out.append(b)

    c = BodyCanonicalizer(relaxed, [Sink()])
    i = 0
    while i < len(body):
        n = rnd.randint(1, 9)
        c.update(body[i:i + n])
        i += n
    c.finish()
    return b"".join(out)


@pytest.mark.parametrize("relaxed", [False, True], ids=["simple", "relaxed"])
def test_body_matches_dkimpy_for_any_chunking(relaxed: bool) -> None:
    rnd = random.Random(4)
    ref = dc.Relaxed if relaxed else dc.Simple
    for _ in range(3000):
        body = b"".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 14)))
        want = ref.canonicalize_body(body)
        assert canon_body(body, relaxed) == want, body
        assert chunked(body, relaxed, rnd) == want, body


@pytest.mark.parametrize("relaxed", [False, True])
def test_empty_body(relaxed: bool) -> None:
    assert canon_body(b"", relaxed) == (b"" if relaxed else b"\r\n")
    assert canon_body(b"\r\n\r\n", relaxed) == (b"" if relaxed else b"\r\n")


def test_bare_lf_is_read_as_crlf_even_across_chunks() -> None:
    lf = b"line one  \nline two\n\n"
    crlf = lf.replace(b"\n", b"\r\n")
    for relaxed in (False, True):
        assert canon_body(lf, relaxed) == canon_body(crlf, relaxed)
        assert chunked(crlf, relaxed, random.Random(1)) == canon_body(crlf, relaxed)


def test_headers_match_dkimpy() -> None:
    cases = [(b"Subject", b" hello  \r\n\tworld\t "), (b"X-A ", b"\tv  a\r\n l"), (b"From", b"a@b")]
    for name, value in cases:
        assert relaxed_header(name, value) == b"%s:%s" % dc.Relaxed.canonicalize_headers([(name, value)])[0]
        assert simple_header(name, value) == b"%s:%s\r\n" % dc.Simple.canonicalize_headers([(name, value)])[0]
    assert simple_header(b"Subject", b" a\n\tb") == b"Subject: a\r\n\tb\r\n"  # milter folds are LF


def test_long_line_without_newline_is_not_carried_whole() -> None:
    body = (b"word " * 40000) + b"   \r\n"
    assert canon_body(body, True) == dc.Relaxed.canonicalize_body(body)
    out = chunked(body, True, random.Random(2))
    assert out == dc.Relaxed.canonicalize_body(body)


def test_length_limit_and_total() -> None:
    body = b"abc\r\ndef\r\n"
    h = body_hashes([body], [("simple", "sha256", 5)])[("simple", "sha256", 5)]
    assert h.digest() == hashlib.sha256(body[:5]).digest()
    assert h.total == len(body)


def test_50_mb_body_streams_in_little_memory() -> None:
    body = Body(spool_threshold=1 << 20)
    line = b"The quick  brown fox jumps over the lazy dog \t\r\n" * 1000
    while body.size < 50 * 1024 * 1024:
        body.write(line)
    assert body.spooled
    tracemalloc.start()
    try:
        hashes = body_hashes(body.chunks(), [("relaxed", "sha256", None), ("simple", "sha256", None)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hashes[("simple", "sha256", None)].total == body.size
    assert peak < 4 * 1024 * 1024, peak
    body.close()
