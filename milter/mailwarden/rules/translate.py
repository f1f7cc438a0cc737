"""Translate pcre: and regexp: patterns into the `regex` module's syntax, or refuse them.

Everything runs on bytes, as Postfix does: no UTF mode, ASCII-only case folding, `\\w` and
POSIX classes ASCII. A construct whose meaning differs between PCRE2 / glibc regcomp() and the
`regex` module, and that cannot be rewritten, raises `Unsupported` with the offset and reason: a
refused rule is reported at load, never silently matched differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

_INTERVAL = re.compile(rb"\{(\d+)(,(\d*))?\}")
_PCRE_KEEP_ESCAPES = b"dDwWsSbBAGnrtfaK"


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


# ---------------------------------------------------------------------------------------------
# PCRE


def translate_pcre(src: bytes, flags: str) -> Translated:
    opts = {"i": True, "s": True, "m": False, "x": False, "A": False, "E": False, "U": False}
    for f in flags:
        if f in opts:
            opts[f] = not opts[f]
    if b"(*" in src:
        raise Unsupported("PCRE verbs (*...) are not supported", src.index(b"(*"))
    out = bytearray()
    i, n = 0, len(src)
    in_class = False
    class_start = 0
    last_was_quant_target = False
    verbose = opts["x"]
    while i < n:
        c = src[i]
        if c == 0x5C:  # backslash
            if i + 1 >= n:
                raise Unsupported("\\ at end of pattern", i)
            e = src[i + 1]
            if not (48 <= e <= 57 or 65 <= e <= 90 or 97 <= e <= 122):
                out += src[i : i + 2]
                i += 2
                last_was_quant_target = True
                continue
            ch = chr(e)
            if ch in "Q":
                end = src.find(b"\\E", i + 2)
                lit = src[i + 2 :] if end < 0 else src[i + 2 : end]
                out += b"".join(b"\\" + bytes([b]) if not _alnum(b) else bytes([b]) for b in lit)
                i = n if end < 0 else end + 2
                last_was_quant_target = bool(lit)
                continue
            if ch == "E":
                i += 2
                continue
            if ch == "z":
                if in_class:
                    raise Unsupported("\\z inside a character class", i)
                out += b"\\Z"
                i += 2
                last_was_quant_target = False
                continue
            elif ch == "Z":
                if in_class:
                    raise Unsupported("\\Z inside a character class", i)
                out += b"(?=\\n?\\Z)"
                i += 2
                last_was_quant_target = False
                continue
            elif ch == "e":
                out += b"\\x1b"
            elif ch == "x":
                if src[i + 2 : i + 3] == b"{":
                    end = src.find(b"}", i + 3)
                    digits = src[i + 3 : end] if end > 0 else b""
                    if end < 0 or not digits or int(digits, 16) > 255:
                        raise Unsupported("\\x{...} beyond one byte", i)
                    out += b"\\x%02x" % int(digits, 16)
                    i = end + 1
                    last_was_quant_target = True
                    continue
                m = re.match(rb"[0-9a-fA-F]{0,2}", src[i + 2 :])
                digits = m.group(0) if m else b""
                out += b"\\x%02x" % (int(digits, 16) if digits else 0)
                i += 2 + len(digits)
                last_was_quant_target = True
                continue
            elif ch == "c":
                if i + 2 >= n:
                    raise Unsupported("\\c at end of pattern", i)
                out += b"\\x%02x" % (src[i + 2] & 0xDF ^ 0x40 if src[i + 2] >= 0x61 else src[i + 2] ^ 0x40)
                i += 3
                last_was_quant_target = True
                continue
            elif ch == "0":
                m = re.match(rb"[0-7]{0,2}", src[i + 2 :])
                digits = m.group(0) if m else b""
                out += b"\\x%02x" % int(b"0" + digits, 8)
                i += 2 + len(digits)
                last_was_quant_target = True
                continue
            elif ch.isdigit():
                if in_class:
                    raise Unsupported("octal or back reference escape inside a character class", i)
                if i + 2 < n and 48 <= src[i + 2] <= 57:
                    raise Unsupported("multi-digit back reference or octal escape", i)
                out += src[i : i + 2]
            elif ch in _PCRE_KEEP_ESCAPES.decode():
                if in_class and ch in "bBAGK":
                    raise Unsupported(f"\\{ch} inside a character class", i)
                out += src[i : i + 2]
                if ch in "bBAGK":
                    i += 2
                    last_was_quant_target = False
                    continue
            else:
                raise Unsupported(f"escape \\{ch} is not supported", i)
            i += 2
            last_was_quant_target = True
            continue
        if in_class:
            if c == 0x5B and src[i + 1 : i + 2] in (b":", b".", b"="):
                close = src.find(src[i + 1 : i + 2] + b"]", i + 2)
                if close < 0:
                    out.append(c)
                    i += 1
                    continue
                if src[i + 1 : i + 2] != b":":
                    raise Unsupported("collating elements and equivalence classes are not supported", i)
                out += src[i : close + 2]
                i = close + 2
                continue
            if c == 0x5B:
                out += b"\\["
                i += 1
                continue
            if c == 0x5D and i > class_start:
                in_class = False
                last_was_quant_target = True
            out.append(c)
            i += 1
            continue
        if verbose and c == 0x23:  # comment to end of line
            end = src.find(b"\n", i)
            end = n if end < 0 else end
            out += src[i:end]
            i = end
            continue
        if verbose and c in b" \t\n\v\f\r":
            out.append(c)
            i += 1
            continue
        if c == 0x5B:
            in_class = True
            out.append(c)
            i += 1
            if src[i : i + 1] == b"^":
                out.append(src[i])
                i += 1
            class_start = i + 1 if src[i : i + 1] == b"]" else i
            if src[i : i + 1] == b"]":
                out += b"\\]"
                i += 1
            continue
        if c == 0x28:  # group
            if src[i + 1 : i + 2] == b"?":
                if src[i + 2 : i + 3] == b"#":
                    end = src.find(b")", i)
                    if end < 0:
                        raise Unsupported("unterminated comment", i)
                    i = end + 1
                    continue
                m = re.match(rb"\(\?[a-zA-Z^-]*[:)]", src[i:])
                if m and b"x" in m.group(0):
                    raise Unsupported("inline (?x) is not supported; use the x flag", i)
                if src[i + 2 : i + 3] in (b"C", b"R", b"&", b"P") and src[i + 2 : i + 4] not in (b"P<",):
                    raise Unsupported("callouts, recursion and (?P...) forms other than (?P<name>)", i)
                if re.match(rb"\(\?[+-]?\d", src[i:]):
                    raise Unsupported("subroutine calls are not supported", i)
                out += b"(?"
                i += 2
                last_was_quant_target = False
                continue
            out.append(c)
            i += 1
            last_was_quant_target = False
            continue
        if c == 0x7B:  # { : a quantifier only in the forms {n} {n,} {n,m}
            m = _INTERVAL.match(src, i)
            if m is None:
                out += b"\\{"
                i += 1
                last_was_quant_target = True
                continue
            if not last_was_quant_target:
                raise PatternError("quantifier does not follow a repeatable item", i)
            out += m.group(0)
            i = m.end()
            i = _greed(src, i, out, opts["U"])
            last_was_quant_target = False
            continue
        if verbose and c in b"+?" and bytes(out.rstrip(b" \t\n\v\f\r")[-1:]) in (b"*", b"+", b"?", b"}"):
            # x flag: a lazy/possessive suffix may stand apart from its quantifier ("a? ?").
            out.append(c)
            i += 1
            continue
        if c in b"*+?":
            if not last_was_quant_target:
                raise PatternError("quantifier does not follow a repeatable item", i)
            out.append(c)
            i += 1
            i = _greed(src, i, out, opts["U"])
            last_was_quant_target = False
            continue
        if c == 0x24 and opts["E"] and not opts["m"]:
            out += b"\\Z"
            i += 1
            last_was_quant_target = False
            continue
        out.append(c)
        i += 1
        last_was_quant_target = c not in b"|^$("
    del last_was_quant_target
    bits = 0
    if opts["i"]:
        bits |= regex.IGNORECASE
    if opts["s"]:
        bits |= regex.DOTALL
    if opts["m"]:
        bits |= regex.MULTILINE
    if opts["x"]:
        bits |= regex.VERBOSE
    return Translated(bytes(out), bits, opts["A"], not opts["x"])


def _greed(src: bytes, i: int, out: bytearray, ungreedy: bool) -> int:
    """Copy a quantifier's lazy/possessive suffix, swapping greediness under the U flag."""
    nxt = src[i : i + 1]
    if nxt == b"+":
        out += b"+"
        return i + 1
    if nxt == b"?":
        if not ungreedy:
            out += b"?"
        return i + 1
    if ungreedy:
        out += b"?"
    return i


def _alnum(b: int) -> bool:
    return 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122


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
