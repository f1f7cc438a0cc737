"""Translate regexp: patterns (glibc regcomp() in the C locale) into the `regex` module's syntax.

Postfix compiles with REG_EXTENDED | REG_ICASE unless the x or i flag turns them off. Under
REG_ICASE glibc upper-cases the pattern and the subject before comparing, and that gives three
results a Perl-style engine does not share, reproduced here:
- an escaped ordinary character is that character *as written*: `\\d` is a `d`, and under
  REG_ICASE it never matches (a lower-case `d` cannot occur in an upper-cased subject);
- a bracket matches a byte when the byte, upper-cased, is in the set built from the upper-cased
  pattern: `[[-~]` holds `a` but does not match it; `[[:upper:]]` and `[[:lower:]]` become
  `[[:alpha:]]`. Brackets are therefore computed as a set of bytes, closed under case when
  REG_ICASE is on so that the `regex` module's own case folding adds nothing;
- everything else folds ASCII letters only, as `regex` does on bytes.
POSIX reports the leftmost *longest* match; a rule whose result uses $n runs in `regex`'s POSIX
mode so that $n is what glibc reports (tests/rules/test_glibc_regex.py compares the two).
glibc's irregular corners are reproduced where they can be (a back reference only to a group
closed in the same alternative; without REG_NEWLINE, `^` after and `$` before a newline that the
match consumes) and refused where they cannot (see rules/README.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from mailwarden.rules.translate import PatternError, Translated, Unsupported, byte_class

_ASCII_LOWER = bytes(range(97, 123))
_ASCII_UPPER = bytes(range(65, 91))
_TO_UPPER = bytes.maketrans(_ASCII_LOWER, _ASCII_UPPER)
_NEVER = b"(?:(?!))"

_GNU_ESCAPES = {
    ord("w"): b"\\w",
    ord("W"): b"\\W",
    ord("s"): b"\\s",
    ord("S"): b"\\S",
}
_GNU_ANCHORS = {
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
    parser = _Posix(src, extended=opts["x"], newline=opts["m"], icase=opts["i"], substitutes=substitutes)
    bits: int = regex.IGNORECASE if opts["i"] else 0
    bits |= regex.MULTILINE if opts["m"] else regex.DOTALL
    if substitutes:
        bits |= regex.POSIX
    return Translated(parser.run(), bits, False, True, tuple(parser.warnings))


ATOM, QUANTIFIED, ANCHOR, BAR = range(4)


@dataclass(frozen=True, slots=True)
class _Item:
    text: bytes
    kind: int = ATOM
    nullable: bool = False
    """Whether the item can match the empty string."""
    anchored: bool = False
    """Whether the item holds an anchor (^ $ \\b \\< ...)."""
    numbers: frozenset[int] = frozenset()
    """The groups the item holds."""


class _Posix:
    """One pass over a POSIX pattern; each group level is a list of items."""

    def __init__(self, src: bytes, extended: bool, newline: bool, icase: bool, substitutes: bool) -> None:
        self.src = src
        self.extended = extended
        self.newline = newline
        self.icase = icase
        self.substitutes = substitutes
        self.levels: list[list[_Item]] = [[]]
        self.opened: list[tuple[int, int]] = []
        """(offset, group number) of each open group."""
        self.groups = 0
        self.warnings: list[tuple[int, str]] = []
        # glibc lets \n refer only to a group closed earlier in the same alternative.
        self.completed: set[int] = set()
        self.anchored_groups: set[int] = set()
        self.nullable_groups: set[int] = set()
        self.repeated_groups: set[int] = set()
        self.branches: list[tuple[set[int], set[int]]] = [(set(), set())]
        """Per level: (groups closed when the level opened, groups closed in its earlier alternatives)."""
        self.prefixes: list[tuple[bool, bool]] = [(True, False)]
        """Per level: prefix() of the level's group where it opened."""

    def add(self, text: bytes, kind: int = ATOM, nullable: bool = False, anchored: bool = False) -> None:
        zero_width = kind in (ANCHOR, BAR)
        self.levels[-1].append(_Item(text, kind, nullable or zero_width, anchored or kind == ANCHOR))

    def at_start(self) -> bool:
        level = self.levels[-1]
        return not level or level[-1].kind == BAR

    def quantify(self, q: bytes, at: int) -> None:
        level = self.levels[-1]
        if not level or level[-1].kind in (BAR, ANCHOR):
            if self.extended:
                raise PatternError("Invalid preceding regular expression", at)
            self.add(regex.escape(q))
            return
        item = level[-1]
        text = item.text
        if not self.extended and item.kind == QUANTIFIED and q[:1] in (b"*", b"{"):
            raise PatternError("Invalid preceding regular expression", at)
        if item.anchored and (q == b"+" or re.search(rb"[2-9]|\d\d|,}", q)):
            # glibc copies the group for each counted repeat and the copies lose the anchor.
            raise Unsupported("an anchor inside a group repeated with + or {n,m}", at)
        capturing = text.startswith(b"(") and not text.startswith(b"(?")
        if item.kind == QUANTIFIED:
            text = b"(?:" + text + b")"
        elif self.substitutes and capturing and re.fullmatch(rb"\{0,(\d\d+|[2-9])\}", q):
            # glibc's copies of the group: $n is an iteration other than the one POSIX picks.
            raise Unsupported("a group repeated {0,m} (m above 1), with $n substitution", at)
        elif self.substitutes and item.nullable and capturing:
            # glibc stops repeating a group at its last non-empty iteration, `regex` takes one
            # more empty one: $n would differ ("(a*)+b" on "aab": "aa" against "").
            raise Unsupported("a repeated group that can match the empty string, with $n substitution", at)
        nullable = item.nullable or q in (b"*", b"?") or q.startswith((b"{0", b"{,"))
        level[-1] = _Item(text + q, QUANTIFIED, nullable, item.anchored, item.numbers)
        self.repeated_groups |= item.numbers

    def open_group(self, at: int) -> None:
        self.groups += 1
        self.prefixes.append(self.prefix())
        self.levels.append([])
        self.opened.append((at, self.groups))
        self.branches.append((set(self.completed), set()))

    def prefix(self) -> tuple[bool, bool]:
        """(nothing can have been consumed, something must have been) before the next item."""
        empty, consumed = self.prefixes[-1]
        level = self.levels[-1]
        start = max((k + 1 for k, item in enumerate(level) if item.kind == BAR), default=0)
        for item in level[start:]:
            empty = empty and item.kind == ANCHOR
            consumed = consumed or not item.nullable
        return empty, consumed

    # Without REG_NEWLINE glibc still lets ^ match after, and $ before, a newline that the match
    # itself consumes; at the start or the end of the match they are start and end of text only.
    def caret(self, at: int) -> None:
        if self.newline:
            self.add(b"^", ANCHOR)
            return
        empty, consumed = self.prefix()
        if empty:
            self.add(b"^", ANCHOR)
        elif consumed:
            self.add(b"(?<=\\n)", ANCHOR)
        else:
            raise Unsupported("^ after something that may match nothing, without the m flag", at)

    def dollar(self, at: int) -> None:
        if self.newline:
            self.add(b"$", ANCHOR)
        elif _ends_match(self.src, at + 1, len(self.levels) - 1):
            self.add(b"\\Z", ANCHOR)
        elif _one_byte_follows(self.src, at + 1, self.extended):
            self.add(b"(?=\\n)", ANCHOR)
        else:
            raise Unsupported("$ before something that may match nothing, without the m flag", at)

    def bar(self) -> None:
        initial, earlier = self.branches[-1]
        earlier |= self.completed
        self.completed = set(initial)
        self.add(b"|", BAR)

    def close_group(self) -> None:
        self.prefixes.pop()
        items = self.levels.pop()
        _, number = self.opened.pop()
        self.completed |= self.branches.pop()[1]
        self.completed.add(number)
        if any(t.anchored for t in items):
            self.anchored_groups.add(number)
        nullable = _nullable(items)
        if nullable:
            self.nullable_groups.add(number)
        text = b"(" + b"".join(t.text for t in items) + b")"
        numbers = frozenset({number}).union(*(t.numbers for t in items))
        self.levels[-1].append(_Item(text, ATOM, nullable, any(t.anchored for t in items), numbers))

    def run(self) -> bytes:
        i, n = 0, len(self.src)
        while i < n:
            if self.src[i] == 0x5C:
                i = self.backslash(i)
            elif self.src[i] == 0x5B:
                text, i = bracket(self.src, i, self.newline, self.icase)
                self.add(text)
            else:
                i = self.special(i) if self.extended else self.basic(i)
        if len(self.levels) > 1:
            raise PatternError("Unmatched ( or \\(", self.opened[-1][0])
        return b"".join(t.text for t in self.levels[0])

    def backslash(self, at: int) -> int:
        """The escape at src[at]; returns the offset after it."""
        src = self.src
        if at + 1 >= len(src):
            raise PatternError("Trailing backslash", at)
        e = src[at + 1]
        i = at + 2
        if not self.extended and e in b"(){|+?":
            return self.basic_escape(e, at)
        if e in _GNU_ESCAPES:
            self.add(_GNU_ESCAPES[e])
        elif e in _GNU_ANCHORS:
            self.add(_GNU_ANCHORS[e], ANCHOR)
        elif 49 <= e <= 57:
            if e - 48 not in self.completed:
                raise PatternError("Invalid back reference", at)
            if e - 48 in self.anchored_groups | self.nullable_groups | self.repeated_groups:
                # glibc fails some of these where they match: "\n(^)\1", "a(){2}\1", "a(x+){2}\1".
                raise Unsupported(
                    "a back reference to a group that is repeated, may be empty or holds an anchor", at
                )
            self.add(b"(?:\\" + bytes([e]) + b")", ATOM, True)
        elif self.icase and 97 <= e <= 122:
            self.add(_NEVER)  # glibc keeps the escaped letter's case; the subject is upper-cased
            self.warn_escape(e, at)
        else:
            self.add(regex.escape(bytes([e])))
            if _is_letter_or_digit(e):
                self.warn_escape(e, at)
        return i

    def warn_escape(self, e: int, at: int) -> None:
        what = f"\\{chr(e)} is not an escape in a regexp: table (glibc): it is the character {chr(e)!r}"
        if self.icase and 97 <= e <= 122:
            what += ", and with the i flag on (the default) it matches nothing at all"
        self.warnings.append((at, what))

    def basic_escape(self, e: int, at: int) -> int:
        """\\( \\) \\{ \\| \\+ \\? of a basic (x flag) pattern."""
        src, i = self.src, at + 2
        if e == 0x28:
            self.open_group(at)
        elif e == 0x29:
            if len(self.levels) == 1:
                raise PatternError("Unmatched ) or \\)", at)
            self.close_group()
        elif e == 0x7B:
            end = src.find(b"\\}", i)
            if end < 0:
                raise PatternError("Unmatched \\{", at)
            self.quantify(_interval(src[i:end], at), at)
            return end + 2
        elif e == 0x7C:
            self.bar()
        elif self.at_start():
            self.add(regex.escape(bytes([e])))
        else:
            self.quantify(bytes([e]), at)
        return i

    def special(self, i: int) -> int:
        """One character of an extended pattern, not a backslash or a bracket."""
        c = self.src[i]
        if c == 0x2E:
            self.add(b"[^\\n]" if self.newline else b".")
        elif c == 0x5E:
            self.caret(i)
        elif c == 0x24:
            self.dollar(i)
        elif c in b"*+?":
            self.quantify(bytes([c]), i)
        elif c == 0x7B:
            end = self.src.find(b"}", i)
            if end < 0:
                raise PatternError("Unmatched { or \\{", i)
            self.quantify(_interval(self.src[i + 1 : end], i), i)
            return end + 1
        elif c == 0x28:
            self.open_group(i)
        elif c == 0x29:
            if len(self.levels) == 1:
                self.add(b"\\)")  # glibc's ERE: an unmatched ) is an ordinary character
            else:
                self.close_group()
        elif c == 0x7C:
            self.bar()
        else:
            self.add(regex.escape(bytes([c])))
        return i + 1

    def basic(self, i: int) -> int:
        """One character of a basic pattern: ^ $ * are special only in some positions."""
        src, c = self.src, self.src[i]
        level = self.levels[-1]
        if c == 0x2E:
            self.add(b"[^\\n]" if self.newline else b".")
        elif c == 0x5E and self.at_start():
            self.caret(i)
        elif c == 0x24 and (i + 1 == len(src) or src[i + 1 :].startswith((b"\\)", b"\\|"))):
            self.dollar(i)
        elif c == 0x2A and level and level[-1].text != b"^":
            self.quantify(b"*", i)
        else:
            self.add(regex.escape(bytes([c])))
        return i + 1


def _ends_match(src: bytes, j: int, depth: int) -> bool:
    """Whether nothing can follow src[j:] in a match: only closing parentheses, or alternatives."""
    n = len(src)
    while j < n:
        c = src[j]
        if c == 0x7C:
            if depth == 0:
                return True
            j = _group_end(src, j)
            continue
        if c != 0x29 or depth == 0:
            return False
        depth -= 1
        j += 1
        if src[j : j + 1] in (b"*", b"+", b"?", b"{"):
            return False
    return True


def _group_end(src: bytes, j: int) -> int:
    """The offset of the ) closing the group that src[j] is in."""
    depth = 0
    while j < len(src):
        c = src[j]
        if c == 0x5C:
            j += 2
            continue
        if c == 0x5B:
            j = _bracket_end(src, j)
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            if depth == 0:
                return j
            depth -= 1
        j += 1
    return j


def _bracket_end(src: bytes, j: int) -> int:
    j += 1
    if src[j : j + 1] == b"^":
        j += 1
    if src[j : j + 1] == b"]":
        j += 1
    while j < len(src) and src[j] != 0x5D:
        if src[j] == 0x5B and src[j + 1 : j + 2] in (b":", b".", b"="):
            close = src.find(src[j + 1 : j + 2] + b"]", j + 2)
            j = len(src) if close < 0 else close + 2
            continue
        j += 1
    return j + 1


def _one_byte_follows(src: bytes, j: int, extended: bool) -> bool:
    """Whether src[j] is a plain character that no quantifier makes optional."""
    special = b"\\[.()|*+?{^$" if extended else b"\\[.*^$"
    if j >= len(src) or src[j] in special:
        return False
    after = src[j + 1 : j + 2]
    return after not in (b"*", b"?", b"{") and not (not extended and src[j + 1 : j + 3] in (b"\\?", b"\\{"))


def _is_letter_or_digit(c: int) -> bool:
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122


def _nullable(items: list[_Item]) -> bool:
    """Whether a group's content (alternatives separated by BAR items) can match the empty string."""
    branch = True
    for item in items:
        if item.kind == BAR:
            if branch:
                return True
            branch = True
        elif not item.nullable:
            branch = False
    return branch


_NUMBER_LIMIT = 0x7FFF  # glibc's RE_DUP_MAX


def _interval(body: bytes, at: int) -> bytes:
    """{n} {n,} {n,m} and glibc's {,m} (= {0,m}) and {,} (= *); `body` is between the braces."""
    m = re.fullmatch(rb"(\d*)(,(\d*))?", body)
    if m is None or (not m.group(1) and m.group(2) is None):
        raise PatternError("Invalid content of \\{\\}", at)
    low = int(m.group(1) or b"0")
    high = m.group(3)
    if high and int(high) < low:
        raise PatternError("Invalid content of \\{\\}", at)
    if max(low, int(high or b"0")) > _NUMBER_LIMIT:
        raise PatternError("Regular expression too big", at)
    if m.group(2) is None:
        return b"{%d}" % low
    return b"{%d,%s}" % (low, high or b"")


_CTYPE: dict[bytes, frozenset[int]] = {
    b"alpha": frozenset(range(65, 91)) | frozenset(range(97, 123)),
    b"digit": frozenset(range(48, 58)),
    b"upper": frozenset(range(65, 91)),
    b"lower": frozenset(range(97, 123)),
    b"space": frozenset(b" \t\n\v\f\r"),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset(range(32)) | {127},
    b"print": frozenset(range(32, 127)),
    b"graph": frozenset(range(33, 127)),
    b"xdigit": frozenset(b"0123456789abcdefABCDEF"),
}
_CTYPE[b"alnum"] = _CTYPE[b"alpha"] | _CTYPE[b"digit"]
_CTYPE[b"punct"] = _CTYPE[b"graph"] - _CTYPE[b"alnum"]
_NAME_MAX = 32  # glibc's BRACKET_NAME_BUF_SIZE


def bracket(src: bytes, start: int, newline: bool, icase: bool) -> tuple[bytes, int]:
    """The bracket expression at src[start] == '[' as a `regex` class, and the offset after it."""
    parser = _Bracket(src, start, icase)
    members = parser.parse()
    if parser.negate:
        if newline:
            members.add(0x0A)
        members = set(range(256)) - members
    if icase:
        members = {c for c in range(256) if bytes([c]).translate(_TO_UPPER)[0] in members}
    return byte_class(members) if members else _NEVER, parser.i


class _Bracket:
    """parse_bracket_exp() of glibc's regcomp.c, in the C locale."""

    def __init__(self, src: bytes, start: int, icase: bool) -> None:
        self.src = src
        self.start = start
        self.icase = icase
        self.i = start + 1
        self.negate = src[self.i : self.i + 1] == b"^"
        if self.negate:
            self.i += 1

    def fail(self, reason: str) -> PatternError:
        return PatternError(reason, self.start)

    def parse(self) -> set[int]:
        members: set[int] = set()
        src, first = self.src, True
        while True:
            if self.i >= len(src):
                raise self.fail("Unmatched [, [^, [:, [., or [=")
            if src[self.i] == 0x5D and not first:
                self.i += 1
                return members
            kind, value = self.element(first)
            first = False
            dash = src[self.i : self.i + 2]
            if kind in ("char", "coll") and len(dash) == 2 and dash[0] == 0x2D and dash[1] != 0x5D:
                self.i += 1
                members |= self.range_to(value)
                continue
            members |= value if isinstance(value, frozenset) else {value}

    def element(self, first: bool) -> tuple[str, int | frozenset[int]]:
        """('char' | 'coll', byte) or ('class' | 'equiv', bytes) at self.i."""
        src = self.src
        c = src[self.i]
        if c == 0x5B and src[self.i + 1 : self.i + 2] in (b":", b".", b"="):
            return self.symbol()
        if c == 0x2D and not first and src[self.i + 1 : self.i + 2] != b"]":
            raise self.fail("Invalid range end")
        self.i += 1
        return "char", self.upper(c)

    def upper(self, c: int) -> int:
        return c - 32 if self.icase and 97 <= c <= 122 else c

    def symbol(self) -> tuple[str, int | frozenset[int]]:
        """[:class:], [=c=] or [.c.]: one character only in the C locale."""
        src, delim = self.src, self.src[self.i + 1]
        close = src.find(bytes([delim]) + b"]", self.i + 2)
        if close < 0 or close - (self.i + 2) >= _NAME_MAX:
            raise self.fail("Unmatched [, [^, [:, [., or [=")
        name = src[self.i + 2 : close]
        self.i = close + 2
        if delim == 0x3A:
            if self.icase and name in (b"upper", b"lower"):
                name = b"alpha"  # glibc: under REG_ICASE both mean both cases
            members = _CTYPE.get(name)
            if members is None:
                raise self.fail("Invalid character class name")
            return "class", members
        if len(name) != 1:
            raise self.fail("Invalid collation character")
        return ("equiv" if delim == 0x3D else "coll"), self.upper(name[0])

    def range_to(self, low: int | frozenset[int]) -> set[int]:
        if self.i >= len(self.src):
            raise self.fail("Unmatched [, [^, [:, [., or [=")
        kind, high = self.element(True)
        if kind not in ("char", "coll") or not isinstance(high, int) or not isinstance(low, int):
            raise self.fail("Invalid range end")
        if high < low:
            raise self.fail("Invalid range end")
        return set(range(low, high + 1))
