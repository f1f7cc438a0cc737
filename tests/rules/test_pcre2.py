"""pcre: tables against libpcre2-8 itself (tests/rules/pcre2.py), compiled as Postfix compiles them.

As test_glibc_regex.py does for regexp: tables: every escape and every class item over every byte,
with and without caseless matching, then random patterns from the whole grammar, where compile
errors, match or no match and every $n must agree. Refusals are counted, never compared.
"""

from __future__ import annotations

import os
import random

import pytest
from tests.rules.differential import compare_random
from tests.rules.pcre2 import Pcre, options_for

from mailwarden.rules.matcher import compile_pattern
from mailwarden.rules.pcre import _PROPERTIES
from mailwarden.rules.pcre_scripts import SCRIPTS
from mailwarden.rules.table import CompileError, Kind, Pattern

BYTES = [bytes([b]) for b in range(256)]
SUBJECTS = [*BYTES, b"\r\n", b"aB", b"a\n", b"11", b"\xe9\xc9"]
FLAGS = ["", "i", "m", "s", "x", "E"]


def _ours(pattern: bytes, flags: str, max_sub: int = 0):  # type: ignore[no-untyped-def]
    return compile_pattern(Kind.PCRE, Pattern(pattern, flags, False, 1), max_sub)


def _agree(pattern: bytes, flags: str, subjects: list[bytes] = SUBJECTS) -> bool:
    """Both refuse the pattern (True), or both match exactly the same subjects with the same spans."""
    ref = Pcre(pattern, options_for(flags))
    try:
        code = _ours(pattern, flags)
    except CompileError as exc:
        assert ref.error, (pattern, flags, exc.reason)
        return True
    assert not ref.error, (pattern, flags, "PCRE2 refuses it", ref.error)
    run = code.regex.match if code.anchored else code.regex.search
    for s in subjects:
        m = run(s)
        want = ref.search(s)
        assert (m.span() if m else None) == (want[0] if want else None), (pattern, flags, s)
    return False


@pytest.mark.parametrize("flags", ["", "i"])
def test_every_escape(flags: str) -> None:
    """Each \\c alone and inside a class: PCRE2's error or PCRE2's bytes (\\h holds 0xa0, \\v 0x85...)."""
    for e in range(1, 256):
        esc = b"\\" + bytes([e])
        for pattern in (esc, b"[" + esc + b"]", b"[^" + esc + b"]", esc + b"{2}"):
            if e in b"123456789" and b"[" not in pattern:
                pattern = b"(a)" * (e - 48) + pattern
            _agree(pattern, flags)


@pytest.mark.parametrize("flags", ["", "i"])
def test_posix_classes_fold_like_pcre2(flags: str) -> None:
    """[[:upper:]] and [[:lower:]] are [[:alpha:]] under caseless matching, negated ones too."""
    names = [b"alpha", b"upper", b"lower", b"digit", b"alnum", b"space", b"blank", b"punct", b"print"]
    names += [b"graph", b"cntrl", b"xdigit", b"word", b"ascii", b"nope"]
    for name in names:
        for body in (b"[:" + name + b":]", b"[:^" + name + b":]", b"[:" + name + b":]a-c", b"=a="):
            for neg in (b"", b"^"):
                _agree(b"[" + neg + body + b"]", flags)
    _agree(b"[:alpha:]", flags)


@pytest.mark.parametrize("flags", ["", "i"])
def test_properties(flags: str) -> None:
    """\\p{..} asks Unicode about code points 0-255, and caseless matching does not fold it."""
    for name in sorted(_PROPERTIES):
        for pattern in (
            b"\\p{%s}" % name.encode(),
            b"\\P{%s}" % name.encode(),
            b"[a\\p{^%s}]" % name.encode(),
        ):
            assert not _agree(pattern, flags)
    for pattern in (b"\\pL", b"\\PL", b"\\p{ l u }", b"\\p{L", b"\\p", b"\\p{sc:Greek}", b"\\p{script=latn}"):
        _agree(pattern, flags)


def test_every_script_name() -> None:
    """All of PCRE2's script names: Latin and Common hold bytes, the others match nothing here."""
    for name in sorted(SCRIPTS):
        assert not _agree(b"\\p{%s}" % name.encode(), "", BYTES)


@pytest.mark.parametrize(
    "pattern",
    [
        b"(?<=a|bb)c",
        b"(?<=a+)c",
        b"(?<=(a|bb))c",
        b"(?<=a(?=b)b)c",
        b"(?<=\\d{3})x",
        b"(?<=\\d{2,3})x",
        b"a{65535}",
        b"a{65536}",
        b"a{2,65536}",
        b"a{3,2}",
        b"(a)\\2",
        b"\\2(a)(b)",
        b"(?<n>a)\\k<n>\\k'n'\\k{n}\\g{n}(?P=n)",
        b"\\k<m>(?<n>a)",
        b"(?<n>a)(?<n>b)",
        b"\\k{2}()()",
        b"\\p{70000}\\P{1a}",
        b"(?<n2>a)\\k<n2>",
        b"(a)(b)\\g{-1}\\g-2\\g{2}\\g1",
        b"(a)\\10",
        b"\\101\\0\\07\\o{101}\\o{400}",
        b"\\x{100}",
        b"\\cA\\c1\\c\xe9",
        b"a(?i)b|c",
        b"(a(?i)b|c)d",
        b"(?i:a)b(?-i)C",
        b"a(?m)$\\nb",
        b"(?s).(?-s).",
        b"\\R\\X\\N\\C",
        b"[\\b\\d-z]",
        b"a\\Kb",
        b"(?=a\\K)",
        b"\\Qa.b\\E+",
        b"[[:a]b:]]",
        b"(*UTF)a",
        b"(?=a)b*a",
        b"(?:(?=[a]).*a)",
        b"(?=.*a)b*a",
        b"^(?=a)b*a",
        b"\\(*a",
        b"(?",
        b"(?i",
        b"(?P=n)(?<n>a)(?P=n)",
        b"(?Q)",
        b"(?R)",
        b"(?P>n)(?<n>a)",
    ],
)
@pytest.mark.parametrize("flags", ["", "i", "E"])
def test_compile_time_rules(pattern: bytes, flags: str) -> None:
    """What PCRE2 refuses at compile time, Postfix skips: so must we (and accept what it accepts)."""
    try:
        _agree(pattern, flags, [b"abbc", b"123x", b"aa", b"AbC", b"a\nb", b"\x01", b"\r\nx", b"ab\n"])
    except AssertionError as exc:
        if "not supported by mailwarden" not in str(exc):
            raise


@pytest.mark.parametrize(
    "template",
    [
        b"(a){%d}",
        b"([ab]){%d}",
        b"(a){1,%d}",
        b"(?:a|bc){%d}",
        b"(?<n>\\d){%d}",
        b"((a)(?i)b|c){%d}",
        b"(a{2,3}x+){%d}",
    ],
)
def test_compiled_size_limit(template: bytes) -> None:
    """A group repeated {n} is compiled n times; past 64 KiB PCRE2 refuses the pattern and so must
    we (near the limit mailwarden may refuse first: its bound is never below PCRE2's size)."""
    rng = random.Random(template)
    for _ in range(60):
        pattern = template % rng.randint(1, 9000)
        if Pcre(pattern, options_for("")).error:
            with pytest.raises(CompileError):
                _ours(pattern, "")
    for depth in (250, 251):
        _agree(b"(" * depth + b"a" + b")" * depth, "", [b"a"])


def prepare(rng: random.Random, pattern: bytes, flags: str) -> tuple[Pcre, int]:
    ref = Pcre(pattern, options_for(flags))
    return ref, ref.groups


RANDOM_PATTERNS = int(os.environ.get("MAILWARDEN_PCRE2_PATTERNS", "3000"))


def test_random_patterns_against_pcre2() -> None:
    seen = compare_random(Kind.PCRE, prepare, 20261202, RANDOM_PATTERNS)
    assert seen["compared"] > RANDOM_PATTERNS // 2
    assert seen["refused"] < RANDOM_PATTERNS // 50, seen
