"""regexp: tables against glibc's regcomp()/regexec() itself (tests/rules/glibc.py), in process.

The expectations are glibc's answers, never written by hand: every escaped byte and every bracket
class with and without REG_ICASE, over every byte; then random patterns from the whole grammar
(tests/rules/gen.py), where match or no match, every $n, and compile errors must agree. A rule
mailwarden refuses ("not supported by mailwarden", rules/README.md) is counted, not compared.
"""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from tests.rules.gen import Generator
from tests.rules.glibc import Regex, cflags_for

from mailwarden.rules.matcher import compile_pattern
from mailwarden.rules.table import CompileError, Kind, Pattern

BYTES = [bytes([b]) for b in range(1, 256)]
FLAGS = ["", "i", "m", "im", "x", "ix"]


def _ours(pattern: bytes, flags: str, max_sub: int = 0):  # type: ignore[no-untyped-def]
    return compile_pattern(Kind.REGEXP, Pattern(pattern, flags, False, 1), max_sub).regex


def _agree(pattern: bytes, flags: str, subjects: list[bytes]) -> None:
    glibc = Regex(pattern, cflags_for(flags, substitutes=False))
    assert glibc.error == 0, pattern
    ours = _ours(pattern, flags)
    want = [s for s in subjects if glibc.search(s) is not None]
    got = [s for s in subjects if ours.search(s) is not None]
    assert got == want, (pattern, flags)


@pytest.mark.parametrize("flags", FLAGS)
def test_every_escaped_byte(flags: str) -> None:
    """`\\d` is a literal d, and under REG_ICASE it matches nothing at all (glibc)."""
    for e in range(1, 256):
        if "x" in flags and bytes([e]) in b"(){}|+?":
            continue  # the basic-syntax operators \\( \\{ \\| \\+ \\?
        pattern = b"\\" + bytes([e])
        if e in b"123456789":
            group = b"\\(1\\)" if "x" in flags else b"(1)"
            pattern = group * (e - 48) + pattern
        _agree(pattern, flags, [*BYTES, b"11", b"a b"])


CLASS_NAMES = [b"alpha", b"upper", b"lower", b"digit", b"alnum", b"space", b"blank", b"punct"]
CLASS_NAMES += [b"print", b"graph", b"cntrl", b"xdigit"]


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("negate", [b"", b"^"])
def test_every_bracket_class(flags: str, negate: bytes) -> None:
    """[[:upper:]] and [[:lower:]] mean [[:alpha:]] under REG_ICASE (glibc and PCRE2 alike)."""
    for name in CLASS_NAMES:
        _agree(b"[" + negate + b"[:" + name + b":]]", flags, [*BYTES, b"\n"])


@pytest.mark.parametrize("flags", ["", "i", "m"])
def test_brackets_ranges_equivalence_collating(flags: str) -> None:
    """Ranges take the upper-cased ends under REG_ICASE: [[-~] holds a but never matches it."""
    rng = random.Random(5)
    ends = b"!-0:AZ[]`az~\x7f\x80\xe9\xff"
    for _ in range(300):
        lo, hi = sorted(rng.sample(ends, 2))
        body = bytes([lo, 0x2D, hi]) + rng.choice([b"", b"[=a=]", b"[.b.]", b"-", b"x", b"[:digit:]"])
        pattern = b"[" + rng.choice([b"", b"^"]) + body + b"]"
        glibc = Regex(pattern, cflags_for(flags, substitutes=False))
        if glibc.error:
            with pytest.raises(CompileError):
                _ours(pattern, flags)
            continue
        _agree(pattern, flags, [*BYTES, b"\n"])


def compare_random(
    seed: int, count: int, differences: list[tuple[str, bytes, str]] | None = None
) -> Counter[str]:
    """`count` random patterns, each run on 8 random subjects by glibc and by mailwarden. A
    difference fails an assertion, or is appended to `differences` (the long run)."""
    rng = random.Random(seed)
    gen = Generator(rng, pcre=False)
    seen: Counter[str] = Counter()

    def differ(what: str, pattern: bytes, flags: str) -> None:
        assert differences is not None, (what, pattern, flags)
        differences.append((what, pattern, flags))

    for _ in range(count):
        pattern, flags = gen.pattern(), gen.flags()
        groups = Regex(pattern, cflags_for(flags)).nsub
        max_sub = rng.randint(1, groups) if groups and rng.random() < 0.6 else 0
        glibc = Regex(pattern, cflags_for(flags, substitutes=max_sub > 0))
        try:
            ours = _ours(pattern, flags, max_sub)
        except CompileError as exc:
            if not glibc.error and "not supported by mailwarden" not in exc.reason:
                differ(f"refused: {exc.reason}", pattern, flags)
            seen["refused" if not glibc.error else "both refuse"] += 1
            continue
        if glibc.error:
            differ("glibc refuses it", pattern, flags)
            continue
        seen["compared"] += 1
        for _ in range(8):
            subject = gen.subject()
            want = glibc.search(subject, groups + 1)
            m = ours.search(subject)
            if (m is not None) != (want is not None):
                differ(f"match on {subject!r}", pattern, flags)
                break
            if m is not None and want is not None and max_sub:
                expected = [subject[a:b] if a >= 0 else b"" for a, b in want[1 : max_sub + 1]]
                if [m.group(k) or b"" for k in range(1, max_sub + 1)] != expected:
                    differ(f"$n on {subject!r}", pattern, flags)
                    break
    return seen


RANDOM_PATTERNS = int(os.environ.get("MAILWARDEN_GLIBC_PATTERNS", "3000"))


def test_random_patterns_against_glibc() -> None:
    seen = compare_random(20261201, RANDOM_PATTERNS)
    assert seen["compared"] > RANDOM_PATTERNS // 2
    assert seen["refused"] < RANDOM_PATTERNS // 20, seen
