"""regexp: tables against glibc's regcomp()/regexec() itself (tests/rules/glibc.py), in process.

The expectations are glibc's answers, never written by hand: every escaped byte and every bracket
class with and without REG_ICASE, over every byte; then random patterns from the whole grammar
(tests/rules/gen.py), where match or no match, every $n, and compile errors must agree. A rule
mailwarden refuses ("not supported by mailwarden", rules/README.md) is counted, not compared.
"""

from __future__ import annotations

import os
import random

import pytest
from tests.rules.differential import compare_random
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


def prepare(rng: random.Random, pattern: bytes, flags: str) -> tuple[Regex, int]:
    """glibc's pattern as dict_regexp.c compiles it: REG_NOSUB unless the result uses $n."""
    groups = Regex(pattern, cflags_for(flags)).nsub
    max_sub = rng.randint(1, groups) if groups and rng.random() < 0.6 else 0
    glibc = Regex(pattern, cflags_for(flags, substitutes=max_sub > 0))
    glibc.nmatch = max_sub + 1
    return glibc, max_sub


RANDOM_PATTERNS = int(os.environ.get("MAILWARDEN_GLIBC_PATTERNS", "3000"))


def test_random_patterns_against_glibc() -> None:
    seen = compare_random(Kind.REGEXP, prepare, 20261201, RANDOM_PATTERNS)
    assert seen["compared"] > RANDOM_PATTERNS // 2
    assert seen["refused"] < RANDOM_PATTERNS // 20, seen
