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


# ---------------------------------------------------------------------------------------------
# POSIX (glibc regcomp), extended by default, basic when the x flag is toggled off


_GNU_ESCAPES = {
    ord("w"): b"\\w",
    ord("W"): b"\\W",
    ord("s"): b"\\s",
    ord("S"): b"\\S",
    ord("b"): b"\\b",
    ord("B"): b"\\B",
    ord("<"): b"\\b(?=\\w)",
    ord(">"): b"\\b(?<=\\w)",
    ord("`"): b"\\A",
    ord("'"): b"\\Z",
}


def translate_posix(src: bytes, flags: str, substitutes: bool) -> Translated:
    opts = {"i": True, "m": False, "x": True}
    for f in flags:
        if f in opts:
            opts[f] = not opts[f]
    return Translated(_Posix(src, opts["x"], opts["m"], substitutes).run(), _posix_flags(opts), False, True)


def _posix_flags(opts: dict[str, bool]) -> int:
    bits: int = regex.IGNORECASE if opts["i"] else 0
    return bits | int(regex.MULTILINE if opts["m"] else regex.DOTALL)


ATOM, QUANTIFIED, ANCHOR, BAR = range(4)


class _Posix:
    """One pass over a POSIX pattern; each group level is a list of (text, kind) atoms."""

    def __init__(self, src: bytes, extended: bool, newline: bool, substitutes: bool) -> None:
        self.src = src
        self.extended = extended
        self.newline = newline
        # Perl-style engines take the first alternative that matches, POSIX the longest: the
        # same answer to *whether* a rule matches, but possibly different $n text.
        self.substitutes = substitutes
        self.levels: list[list[tuple[bytes, int]]] = [[]]
        self.opened: list[int] = []

    def add(self, text: bytes, kind: int = ATOM) -> None:
        self.levels[-1].append((text, kind))

    def at_start(self) -> bool:
        level = self.levels[-1]
        return not level or level[-1][1] == BAR

    def quantify(self, q: bytes, at: int) -> None:
        level = self.levels[-1]
        if not level or level[-1][1] in (BAR, ANCHOR):
            if self.extended:
                raise PatternError("Invalid preceding regular expression", at)
            self.add(regex.escape(q))
            return
        text, kind = level[-1]
        if kind == QUANTIFIED:
            text = b"(?:" + text + b")"
        elif self.substitutes and text.startswith(b"(") and not text.startswith(b"(?") and _variable(text):
            # A repeated group of variable length: which iteration POSIX reports can differ.
            raise Unsupported("a repeated variable-length group with $n substitution", at)
        level[-1] = (text + q, QUANTIFIED)

    def open_group(self, at: int) -> None:
        self.levels.append([])
        self.opened.append(at)

    def close_group(self, at: int) -> None:
        inner = b"".join(t for t, _ in self.levels.pop())
        self.opened.pop()
        self.add(b"(" + inner + b")")

    def bar(self, at: int) -> None:
        if self.substitutes:
            raise Unsupported("alternation with $n substitution (POSIX longest match differs)", at)
        self.add(b"|", BAR)

    def run(self) -> bytes:
        src, n, i = self.src, len(self.src), 0
        ext = self.extended
        while i < n:
            c = src[i]
            if c == 0x5C:
                if i + 1 >= n:
                    raise PatternError("Trailing backslash", i)
                e = src[i + 1]
                at = i
                i += 2
                if not ext and e == 0x28:
                    self.open_group(at)
                elif not ext and e == 0x29:
                    if len(self.levels) == 1:
                        raise PatternError("Unmatched ) or \\)", at)
                    self.close_group(at)
                elif not ext and e == 0x7B:
                    end = src.find(b"\\}", i)
                    if end < 0:
                        raise PatternError("Unmatched \\{", at)
                    self.quantify(_interval(b"{" + src[i:end] + b"}", at), at)
                    i = end + 2
                elif not ext and e == 0x7C:
                    self.bar(at)
                elif not ext and e in b"+?":
                    if self.at_start():
                        self.add(regex.escape(bytes([e])))
                    else:
                        self.quantify(bytes([e]), at)
                elif e in _GNU_ESCAPES:
                    self.add(_GNU_ESCAPES[e], ANCHOR if e in b"<>`'bB" else ATOM)
                elif 49 <= e <= 57:
                    self.add(b"\\" + bytes([e]))
                else:
                    self.add(regex.escape(bytes([e])))
                continue
            if c == 0x5B:
                cls, i = _bracket(src, i, self.newline)
                self.add(cls)
                continue
            if c == 0x2E:
                self.add(b"[^\\n]" if self.newline else b".")
            elif c == 0x5E:
                if ext or self.at_start():
                    self.add(b"^", ANCHOR)
                else:
                    self.add(b"\\^")
            elif c == 0x24:
                anchor = b"$" if self.newline else b"\\Z"
                rest = src[i + 1 :]
                if ext or not rest or rest.startswith((b"\\)", b"\\|")):
                    self.add(anchor, ANCHOR)
                else:
                    self.add(b"\\$")
            elif c == 0x2A:
                level = self.levels[-1]
                if not ext and (not level or level[-1] == (b"^", ANCHOR)):
                    self.add(b"\\*")
                else:
                    self.quantify(b"*", i)
            elif ext and c in b"+?":
                self.quantify(bytes([c]), i)
            elif ext and c == 0x7B:
                end = src.find(b"}", i)
                if end < 0:
                    raise PatternError("Unmatched { or \\{", i)
                self.quantify(_interval(src[i : end + 1], i), i)
                i = end
            elif ext and c == 0x28:
                self.open_group(i)
            elif ext and c == 0x29:
                if len(self.levels) == 1:
                    self.add(b"\\)")  # glibc's ERE: an unmatched ) is an ordinary character
                else:
                    self.close_group(i)
            elif ext and c == 0x7C:
                self.bar(i)
            else:
                self.add(regex.escape(bytes([c])))
            i += 1
        if len(self.levels) > 1:
            raise PatternError("Unmatched ( or \\(", self.opened[-1])
        return b"".join(t for t, _ in self.levels[0])


def _variable(group: bytes) -> bool:
    """Whether a translated group can match text of different lengths (quantifier or alternation)."""
    plain = re.sub(rb"\\.|\[(?:\\.|[^\]])*\]", b"x", group[1:-1])
    return any(c in plain for c in b"*+?{|")


def _interval(text: bytes, at: int) -> bytes:
    m = re.fullmatch(rb"\{(\d+)(,(\d*))?\}", text)
    if m is None:
        raise PatternError("Invalid content of \\{\\}", at)
    low = int(m.group(1))
    high = m.group(3)
    if low > 32767 or (high and int(high) > 32767):
        raise PatternError("Regular expression too big", at)
    if high and int(high) < low:
        raise PatternError("Invalid content of \\{\\}", at)
    return text


_POSIX_CLASSES = frozenset(
    b"alpha digit alnum upper lower space blank punct print graph cntrl xdigit".split()
)


def _bracket(src: bytes, i: int, newline: bool) -> tuple[bytes, int]:
    """A POSIX bracket expression at src[i] == '[': backslash is literal, ']' first is literal."""
    start = i
    i += 1
    negate = src[i : i + 1] == b"^"
    if negate:
        i += 1
    items: list[bytes] = []
    first = True
    n = len(src)
    while True:
        if i >= n:
            raise PatternError("Unmatched [, [^, [:, [., or [=", start)
        c = src[i]
        if c == 0x5D and not first:
            i += 1
            break
        first = False
        if c == 0x5B and src[i + 1 : i + 2] in (b":", b".", b"="):
            kind = src[i + 1 : i + 2]
            close = src.find(kind + b"]", i + 2)
            if close < 0:
                raise PatternError("Unmatched [, [^, [:, [., or [=", i)
            if kind != b":":
                raise Unsupported("collating elements and equivalence classes are not supported", i)
            name = src[i + 2 : close]
            if name not in _POSIX_CLASSES:
                raise PatternError("Invalid character class name", i)
            items.append(b"[:" + name + b":]")
            i = close + 2
            continue
        if src[i + 1 : i + 2] == b"-" and i + 2 < n and src[i + 2] != 0x5D:
            hi = src[i + 2]
            if hi < c:
                raise PatternError("Invalid range end", i)
            items.append(regex.escape(bytes([c])) + b"-" + regex.escape(bytes([hi])))
            i += 3
            continue
        items.append(b"\\" + bytes([c]) if not _alnum(c) else bytes([c]))
        i += 1
    body = b"".join(items)
    if negate:
        return b"[^" + body + (b"\\n" if newline else b"") + b"]", i
    return b"[" + body + b"]", i
