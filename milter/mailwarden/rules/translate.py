"""What the pcre: (rules/pcre.py) and regexp: (rules/posix.py) translators share.

Everything runs on bytes, as Postfix does: no UTF mode, ASCII-only case folding, `\\w` and
POSIX classes ASCII. A construct whose meaning differs between PCRE2 / glibc regcomp() and the
`regex` module, and that cannot be rewritten, raises `Unsupported` with the offset and reason: a
refused rule is reported at load, never silently matched differently.
"""

from __future__ import annotations

from dataclasses import dataclass


class Unsupported(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason)


class PatternError(Unsupported):
    """A pattern PCRE2 itself refuses (Postfix skips the rule too), found before `regex` sees it."""


@dataclass(frozen=True, slots=True)
class Translated:
    pattern: bytes
    flags: int
    anchored: bool
    literal_safe: bool
    """Whether literal-extraction for the prefilter may read `pattern` (no verbose mode)."""
    warnings: tuple[tuple[int, str], ...] = ()
    """(offset, text): what `rules check` should point out although the pattern compiles."""


def byte_class(members: set[int] | frozenset[int]) -> bytes:
    """A `regex` character class matching exactly these bytes (ranges written as \\xHH-\\xHH)."""
    out = bytearray(b"[")
    ordered = sorted(members)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out += b"\\x%02x" % ordered[i]
        if j > i:
            out += b"-\\x%02x" % ordered[j]
        i = j + 1
    return bytes(out + b"]")
