"""Translate pcre: patterns (PCRE2 10.42, 8-bit, no UTF, C character tables) into `regex` syntax.

Postfix compiles with PCRE2_CASELESS | PCRE2_DOTALL unless the i or s flag turns them off. Bytes
are code points 0-255: `\\p{..}` asks Unicode about Latin-1, `\\h` and `\\v` hold 0xa0 and 0x85,
case folding is ASCII only. Every escape, class and property is written out as the bytes it
matches, so the `regex` module never has to agree with PCRE2 on a definition. What PCRE2 refuses
at compile time (variable-length lookbehind, bounds above 65535, references to groups that do not
exist, unknown escapes or class names) raises PatternError: Postfix skips such a rule, and so do
we. What cannot be reproduced raises Unsupported. tests/rules/test_pcre2.py compares every
construct with libpcre2 itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import regex

from mailwarden.rules.pcre_scripts import SCRIPTS
from mailwarden.rules.translate import PatternError, Translated, Unsupported, byte_class

_LIMIT = 65535  # PCRE2's largest {n,m} bound
_MAX_SIZE = 65535  # PCRE2's largest compiled pattern (LINK_SIZE 2, as Debian builds it)
_CLASS_SIZE = 33  # a compiled class: an opcode and a 256-bit map
_NEST_LIMIT = 250 + 1  # PCRE2's parens_nest_limit, and the top level
_INTERVAL = re.compile(rb"\{(\d+)(,(\d*))?\}")
_SPACE = b" \t\n\v\f\r"
_CONTROL = {ord("a"): 0x07, ord("e"): 0x1B, ord("f"): 0x0C, ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09}
_REFUSED_BY_PCRE2 = b"LlUuFN"  # \L \l \U \u \F and \N{name}: compile errors in PCRE2


def _set(*ranges: tuple[int, int]) -> frozenset[int]:
    return frozenset(c for lo, hi in ranges for c in range(lo, hi + 1))


_UPPER, _LOWER, _DIGIT = _set((65, 90)), _set((97, 122)), _set((48, 57))
_ALPHA = _UPPER | _LOWER
_SPACES = frozenset(_SPACE)
_WORD = _ALPHA | _DIGIT | {0x5F}
_POSIX: dict[bytes, frozenset[int]] = {
    b"alpha": _ALPHA,
    b"upper": _UPPER,
    b"lower": _LOWER,
    b"digit": _DIGIT,
    b"alnum": _ALPHA | _DIGIT,
    b"word": _WORD,
    b"space": _SPACES,
    b"blank": frozenset(b" \t"),
    b"cntrl": _set((0, 31), (127, 127)),
    b"print": _set((32, 126)),
    b"graph": _set((33, 126)),
    b"punct": _set((33, 126)) - _ALPHA - _DIGIT,
    b"xdigit": _DIGIT | frozenset(b"abcdefABCDEF"),
    b"ascii": _set((0, 127)),
}
_TYPES: dict[int, frozenset[int]] = {
    ord("d"): _DIGIT,
    ord("w"): _WORD,
    ord("s"): _SPACES,
    ord("h"): frozenset(b"\t \xa0"),
    ord("v"): _set((10, 13), (0x85, 0x85)),
}
_ALL = _set((0, 255))


def _properties() -> dict[str, frozenset[int]]:
    """\\p{..} names PCRE2 knows, for the code points 0-255 (names compared loosely, as PCRE2 does)."""
    cats: dict[str, set[int]] = {}
    for c in range(256):
        cat = unicodedata.category(chr(c))
        cats.setdefault(cat, set()).add(c)
        cats.setdefault(cat[0], set()).add(c)
    names = ["C", "Cc", "Cf", "Cn", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn"]
    names += ["N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps"]
    names += ["S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs"]
    props = {n.lower(): frozenset(cats.get(n, ())) for n in names}
    letters = props["l"]
    props["l&"] = props["lc"] = props["lu"] | props["ll"] | props["lt"]
    props["any"] = _ALL
    props["xan"] = letters | props["n"]
    props["xwd"] = props["xan"] | {0x5F}
    props["xps"] = props["xsp"] = props["z"] | frozenset(b"\t\n\v\f\r") | {0x85}
    props["xuc"] = frozenset(b"$@`") | _set((0xA0, 0xFF))
    props["latin"] = props["latn"] = frozenset(c for c in letters if c not in (0xB5,))
    props["common"] = props["zyyy"] = _ALL - props["latin"]
    return props


_PROPERTIES = _properties()


# Sets `regex` has an escape for, with exactly these bytes on a bytes pattern: its fast paths.
_SHORTHANDS = {
    _DIGIT: b"\\d",
    _ALL - _DIGIT: b"\\D",
    _WORD: b"\\w",
    _ALL - _WORD: b"\\W",
    _SPACES: b"\\s",
    _ALL - _SPACES: b"\\S",
}


def _never(members: frozenset[int] | set[int]) -> bytes:
    """The bytes as a `regex` item: a shorthand, a class, or (empty set) an item that never matches."""
    if not members:
        return b"(?!)"
    return _SHORTHANDS.get(frozenset(members)) or byte_class(members)


def translate_pcre(src: bytes, flags: str) -> Translated:
    opts = {"i": True, "s": True, "m": False, "x": False, "A": False, "E": False, "U": False}
    for f in flags:
        if f in opts:
            opts[f] = not opts[f]
    pattern = _Pcre(src, opts).run()
    bits = 0
    if opts["i"]:
        bits |= regex.IGNORECASE
    if opts["s"]:
        bits |= regex.DOTALL
    if opts["m"]:
        bits |= regex.MULTILINE
    return Translated(pattern, bits, opts["A"], True)


@dataclass(slots=True)
class _Frame:
    """One group level: its options, its inline option changes, and fixed-length bookkeeping."""

    kind: str
    """'top', 'group', 'lookahead' or 'lookbehind'."""
    caseless: bool
    multiline: bool
    at: int
    scoped: list[bytes] = field(default_factory=list)
    """Inline option changes `(?i)` seen in this group, each opened as `(?i:`; see _Pcre.options."""
    widths: list[int | None] = field(default_factory=list)
    width: int | None = 0
    size: int = 0
    """An upper bound of PCRE2's compiled size of the group so far, in bytes (see _Pcre.check_size)."""


class _Pcre:
    """One pass over a PCRE2 pattern, writing `regex` syntax to `out`."""

    def __init__(self, src: bytes, opts: dict[str, bool]) -> None:
        self.src = src
        self.i = 0
        self.out = bytearray()
        self.verbose = opts["x"]
        self.ungreedy = opts["U"]
        self.endonly = opts["E"]
        self.frames = [_Frame("top", opts["i"], opts["m"], 0)]
        self.target: int | None = None
        """Width of the last item if a quantifier may follow it (None: it may not)."""
        self.groups = 0
        self.names: set[bytes] = set()
        self.references: list[tuple[int, int | bytes]] = []
        self.properties: set[int] = set()
        """\\p and \\P members of the class being read."""
        self.last_size = (0, False)
        """(size bound, is a group) of the last item, for a quantifier's copies."""
        self.names_size = 0
        self.started = opts["A"]
        """Whether anything but the opening of groups came before (the A flag anchors the start)."""

    @property
    def frame(self) -> _Frame:
        return self.frames[-1]

    def run(self) -> bytes:
        src = self.src
        while self.i < len(src):
            if self.verbose and self.skip_ignorable():
                continue
            c = src[self.i]
            if c == 0x5C:
                self.escape()
            elif c == 0x5B:
                self.char_class()
            elif c == 0x28:
                self.open_group()
            elif c == 0x29:
                self.close_group()
            elif c == 0x7C:
                self.bar()
            elif c in b"*+?" or (c == 0x7B and _INTERVAL.match(src, self.i)):
                self.quantifier()
            else:
                self.plain(c)
        if len(self.frames) > 1:
            raise PatternError("missing closing parenthesis", len(self.src))
        self.out += b")" * len(self.frame.scoped)
        for at, ref in self.references:
            if (ref not in self.names) if isinstance(ref, bytes) else ref > self.groups:
                raise PatternError("reference to non-existent subpattern", at)
        self.check_size()
        return bytes(self.out)

    def check_size(self) -> None:
        """PCRE2 refuses a pattern whose compiled form exceeds 64 KiB (a group repeated {n,m} is
        compiled n to m times). The bound computed here is never below PCRE2's size, so a pattern
        within it compiles; one above it may or may not, and is refused as Unsupported."""
        if self.frame.size + self.names_size + 10 > _MAX_SIZE:
            raise Unsupported("the pattern may exceed PCRE2's compiled size limit (64 KiB)", 0)

    def skip_ignorable(self) -> bool:
        """x flag: skip white space and # comments; True if something was skipped."""
        src, i = self.src, self.i
        if src[i] in _SPACE:
            self.i += 1
            return True
        if src[i] == 0x23:
            end = src.find(b"\n", i)
            self.i = len(src) if end < 0 else end + 1
            return True
        return False

    # -- items ------------------------------------------------------------------------------

    def atom(self, text: bytes, width: int | None = 1, size: int | None = None) -> None:
        self.started = True
        self.out += text
        self.add_width(width)
        self.target = width if width is not None else -1
        self.last_size = (len(text) if size is None else size, False)
        self.frame.size += self.last_size[0]

    def assertion(self, text: bytes) -> None:
        self.started = True
        self.out += text
        self.target = None
        self.frame.size += len(text) + 1

    def add_width(self, width: int | None) -> None:
        f = self.frame
        f.width = None if f.width is None or width is None else f.width + width

    def plain(self, c: int) -> None:
        self.i += 1
        if c == 0x2E:
            self.atom(b".")
        elif c == 0x5E:
            self.assertion(b"^")
        elif c == 0x24:
            self.assertion(b"\\Z" if self.endonly and not self.frame.multiline else b"$")
        else:
            self.atom(regex.escape(bytes([c])))

    # -- quantifiers ------------------------------------------------------------------------

    def quantifier(self) -> None:
        at, src = self.i, self.src
        if self.target is None:
            raise PatternError("quantifier does not follow a repeatable item", at)
        m = _INTERVAL.match(src, at)
        if m is not None:
            low, high = int(m.group(1)), m.group(3)
            if low > _LIMIT or (high and int(high) > _LIMIT):
                raise PatternError("number too big in {} quantifier", at)
            if high and int(high) < low:
                raise PatternError("numbers out of order in {} quantifier", at)
            text = m.group(0)
            self.i = m.end()
            exact = m.group(2) is None
            width = self.target * low if exact and self.target >= 0 else None
            bounds = (low, low if exact else int(high) if high else None)
        else:
            text = bytes([src[at]])
            self.i += 1
            width = None
            bounds = (1 if text == b"+" else 0, 1 if text == b"?" else None)
        self.frame.size += self.copies_size(*bounds)
        # The width of the quantified item replaces the width of the item itself.
        f = self.frame
        if f.width is not None and self.target >= 0:
            f.width -= self.target
            f.width = None if width is None else f.width + width
        else:
            f.width = None
        self.out += text + self.greed()
        self.target = None

    def copies_size(self, low: int, high: int | None) -> int:
        """The size a quantifier adds: a repeated group is compiled once per repeat (bounded)."""
        size, group = self.last_size
        if not group:
            return 3
        if high is None:
            return max(low, 1) * size + 3 - size
        return low * size + (high - low) * (size + 7) - size

    def greed(self) -> bytes:
        """A quantifier's lazy/possessive suffix, with greediness swapped under the U flag."""
        if self.verbose:
            while self.i < len(self.src) and self.skip_ignorable():
                pass
        nxt = self.src[self.i : self.i + 1]
        if nxt == b"+":
            self.i += 1
            return b"+"
        if nxt == b"?":
            self.i += 1
            return b"" if self.ungreedy else b"?"
        return b"?" if self.ungreedy else b""

    # -- groups -----------------------------------------------------------------------------

    def open_group(self) -> None:
        at, src = self.i, self.src
        f = self.frame
        kind, text = "group", b"("
        if src[at + 1 : at + 2] == b"*":
            raise Unsupported("PCRE verbs (*...) are not supported", at)
        if src[at + 1 : at + 2] != b"?":
            self.groups += 1
            self.i += 1
        else:
            head = src[at + 2 : at + 4]
            if head[:1] == b"#":
                end = src.find(b")", at)
                if end < 0:
                    raise PatternError("missing ) at end of (?# comment", at)
                self.i = end + 1
                return
            if head in (b"<=", b"<!"):
                kind, text = "lookbehind", b"(?" + head
                self.i = at + 4
            elif head[:1] in (b":", b"=", b"!", b">"):
                kind = "lookahead" if head[:1] in b"=!" else "group"
                if head[:1] == b"=" and not self.started and not src.startswith((b".*", b".+"), at + 3):
                    # PCRE2 10.42 takes the lookahead's first character as the match's first
                    # character and then misses matches: "(?=a)b*a" fails on "a" (fixed in 10.45).
                    raise Unsupported(
                        "a pattern that starts with a lookahead (PCRE2 10.42 misses matches)", at
                    )
                text = b"(?" + head[:1]
                self.i = at + 3
            elif head[:1] in (b"<", b"'") or head == b"P<":
                text = self.named_group(at)
            elif head == b"P=":
                self.named_backreference(at)
                return
            elif self.options(at):
                return
            elif head[:1] and (head[:1] in b"R0123456789+-&C(|*" or head == b"P>"):
                raise Unsupported("(? recursion, subroutine, callout, condition or branch reset", at)
            else:
                raise PatternError("unrecognized character after (? or (?-", at + 2)
        self.out += text
        self.frames.append(_Frame(kind, f.caseless, f.multiline, at))
        if len(self.frames) > _NEST_LIMIT:
            raise PatternError("parentheses are too deeply nested", at)
        self.target = None

    def named_group(self, at: int) -> bytes:
        src = self.src
        start = at + (4 if src[at + 2 : at + 3] == b"P" else 3)
        close = b">" if src[start - 1] == 0x3C else b"'"
        m = re.match(rb"([A-Za-z_]\w{0,31})" + re.escape(close), src[start:])
        if m is None:
            raise PatternError("syntax error in subpattern name", at)
        name = m.group(1)
        if name in self.names:
            raise PatternError("two named subpatterns have the same name", at)
        self.names.add(name)
        self.names_size += len(name) + 3
        self.groups += 1
        self.i = start + m.end()
        return b"(?P<" + name + b">"

    def options(self, at: int) -> bool:
        """(?imsx-imsx) and (?imsx-imsx: ... ); False if src[at:] is something else."""
        m = re.match(rb"\(\?([a-zA-Z^]*)(?:-([a-zA-Z]*))?([:)])", self.src[at:])
        if m is None:
            return False
        on, off = m.group(1), m.group(2) or b""
        if set(on + off) - set(b"ims"):
            raise Unsupported("inline options other than i, m and s (use the table's flags)", at)
        f = self.frame
        setting = b"(?" + on + (b"-" + off if off else b"") + b":"
        self.i = at + m.end()
        caseless = (f.caseless or b"i" in on) and b"i" not in off
        multiline = (f.multiline or b"m" in on) and b"m" not in off
        if m.group(3) == b":":
            self.out += setting
            self.frames.append(_Frame("group", caseless, multiline, at))
        else:
            # The change lasts to the end of the group, alternatives included: opened here as a
            # scoped group, closed and opened again at each | (see bar) and closed at the end.
            self.out += setting
            f.scoped.append(setting)
            f.caseless, f.multiline = caseless, multiline
        self.target = None
        return True

    def close_group(self) -> None:
        at = self.i
        self.i += 1
        if len(self.frames) == 1:
            raise PatternError("unmatched closing parenthesis", at)
        f = self.frames.pop()
        self.out += b")" * len(f.scoped) + b")"
        size = f.size + 12 + 3 * len(f.scoped)
        self.frame.size += size
        self.last_size = (size, True)
        widths = [*f.widths, f.width]
        if f.kind == "lookbehind":
            if None in widths:
                raise PatternError("lookbehind assertion is not fixed length", f.at)
            self.add_width(0)
            self.target = 0
            return
        width = widths[0] if all(w == widths[0] for w in widths) else None
        if f.kind == "lookahead":
            width = 0
        self.add_width(width)
        self.target = width if width is not None else -1

    def bar(self) -> None:
        self.i += 1
        f = self.frame
        scoped = b"".join(f.scoped)
        self.out += b")" * len(f.scoped) + b"|" + scoped
        f.size += 3
        f.widths.append(f.width)
        f.width = 0
        self.target = None

    # -- escapes ----------------------------------------------------------------------------

    def escape(self) -> None:
        at, src = self.i, self.src
        if at + 1 >= len(src):
            raise PatternError("\\ at end of pattern", at)
        e = src[at + 1]
        self.i = at + 2
        if not _isalnum(e):
            self.atom(regex.escape(bytes([e])))
            return
        members = self.escaped_set(e, at)
        if members is not None:
            text = _never(members)
            if self.frame.caseless and any(c ^ 0x20 not in members for c in members if c in _ALPHA):
                text = b"(?-i:" + text + b")"  # \p{Lu} stays upper case under caseless matching
            self.atom(text, size=_CLASS_SIZE)
            return
        value = self.escaped_byte(e, at)
        if value is not None:
            self.atom(b"\\x%02x" % value)
            return
        self.special_escape(e, at)

    def escaped_set(self, e: int, at: int) -> frozenset[int] | None:
        """\\d \\w \\s \\h \\v (and negations), \\N, \\C, \\p, \\P: the bytes they match, else None."""
        lower = e | 0x20
        if lower in _TYPES:
            members = _TYPES[lower]
            return members if e == lower else _ALL - members
        if e == ord("N"):
            if self.src[self.i : self.i + 1] == b"{" and not _INTERVAL.match(self.src, self.i):
                raise PatternError("\\N{name} is not supported in non-UTF mode", at)
            return _ALL - {0x0A}
        if e == ord("C"):
            return _ALL
        if e in b"pP":
            return self.property(e, at)
        return None

    def property(self, e: int, at: int) -> frozenset[int]:
        src = self.src
        if src[self.i : self.i + 1] == b"{":
            end = src.find(b"}", self.i)
            if end < 0:
                raise PatternError("malformed \\P or \\p sequence", at)
            name = src[self.i + 1 : end]
            self.i = end + 1
        elif self.i < len(src):
            name = src[self.i : self.i + 1]
            self.i += 1
        else:
            raise PatternError("malformed \\P or \\p sequence", at)
        negate = e == ord("P")
        if name.startswith(b"^"):
            negate, name = not negate, name[1:]
        key = name.decode("latin-1").lower().replace(" ", "").replace("_", "").replace("-", "")
        key = re.sub(r"^(?:sc|script)[:=]", "", key)
        members = _PROPERTIES.get(key, frozenset() if key in SCRIPTS else None)
        if members is None and (len(name) == 1 or not re.fullmatch(r"[a-z][a-z0-9&:=]*", key)):
            raise PatternError("unknown property name after \\P or \\p", at)
        if members is None:  # perhaps one of PCRE2's many script or Bidi names
            raise Unsupported(f"property \\p{{{name.decode('latin-1')}}} is not supported", at)
        return _ALL - members if negate else members

    def escaped_byte(self, e: int, at: int) -> int | None:
        """The byte an escape stands for (\\n \\x41 \\x{41} \\101 \\o{101} \\cA ...), else None."""
        src = self.src
        if e in _CONTROL:
            return _CONTROL[e]
        if e == ord("x"):
            if src[self.i : self.i + 1] == b"{":
                m = re.match(rb"\{([0-9a-fA-F]+)\}", src[self.i :])
                if m is None:
                    raise PatternError("\\x{ is not followed by hexadecimal digits and }", at)
                self.i += m.end()
                return _byte(int(m.group(1), 16), at)
            m = re.match(rb"[0-9a-fA-F]{0,2}", src[self.i :])
            digits = m.group(0) if m else b""
            self.i += len(digits)
            return int(digits or b"0", 16)
        if e == ord("o"):
            m = re.match(rb"\{([0-7]+)\}", src[self.i :])
            if m is None:
                raise PatternError("\\o is not followed by octal digits in {}", at)
            self.i += m.end()
            return _byte(int(m.group(1), 8), at)
        if e == ord("0"):
            m = re.match(rb"[0-7]{0,2}", src[self.i :])
            digits = m.group(0) if m else b""
            self.i += len(digits)
            return int(b"0" + digits, 8)
        if e == ord("c"):
            if self.i >= len(src) or src[self.i] > 127:
                raise PatternError("\\c must be followed by a printable ASCII character", at)
            c = src[self.i]
            self.i += 1
            return (c - 32 if 97 <= c <= 122 else c) ^ 0x40
        return None

    def special_escape(self, e: int, at: int) -> None:
        """Assertions, back references, \\R, \\Q..\\E, \\K; PCRE2's errors for the rest."""
        if e in b"bBAzZG":
            text = {ord("z"): b"\\Z", ord("Z"): b"(?=\\n?\\Z)"}.get(e, b"\\" + bytes([e]))
            self.assertion(text)
        elif e == ord("K"):
            if any(f.kind == "lookbehind" for f in self.frames) or self.lookahead_open():
                raise PatternError("\\K is not allowed in lookarounds", at)
            self.assertion(b"\\K")
        elif e == ord("R"):
            self.atom(b"(?>\\r\\n|[\\n\\x0b\\x0c\\r\\x85])", None)
        elif e == ord("Q"):
            self.quoted()
        elif e == ord("E"):
            pass
        elif 49 <= e <= 57:
            self.digits(at)
        elif e in b"gk":
            self.named_reference(e, at)
        elif e in _REFUSED_BY_PCRE2:
            raise PatternError(f"PCRE2 does not support \\{chr(e)}", at)
        elif e == ord("X"):
            # Grapheme clusters over code points 0-255: CR LF, or any one byte (no Extend there).
            self.atom(b"(?>\\r\\n|[\\x00-\\xff])", None)
        else:
            raise PatternError("unrecognized character follows \\", at)

    def digits(self, at: int) -> None:
        """\\N...: a back reference if below 10, starting with 8 or 9, or naming an earlier group;
        else up to three octal digits."""
        m = re.match(rb"\d+", self.src[at + 1 :])
        assert m is not None
        number = int(m.group(0))
        if number < 10 or m.group(0)[:1] in b"89" or number <= self.groups:
            self.i = at + 1 + m.end()
            self.backreference(number, at)
            return
        self.atom(b"\\x%02x" % self.octal(at))

    def octal(self, at: int) -> int:
        m = re.match(rb"[0-7]{1,3}", self.src[at + 1 :])
        assert m is not None
        self.i = at + 1 + m.end()
        value = int(m.group(0), 8)
        if value > 0xFF:
            raise PatternError("octal value is greater than \\377 in 8-bit non-UTF mode", at)
        return value

    def lookahead_open(self) -> bool:
        return any(f.kind == "lookahead" for f in self.frames)

    def quoted(self) -> None:
        src = self.src
        end = src.find(b"\\E", self.i)
        text = src[self.i :] if end < 0 else src[self.i : end]
        self.i = len(src) if end < 0 else end + 2
        for b in text:
            self.atom(regex.escape(bytes([b])))

    def backreference(self, number: int, at: int) -> None:
        if any(f.kind == "lookbehind" for f in self.frames):
            raise Unsupported("a back reference inside a lookbehind", at)
        self.references.append((at, number))
        self.atom(b"(?:\\g<%d>)" % number, None)

    def named_backreference(self, at: int) -> None:
        """(?P=name)."""
        m = re.match(rb"\(\?P=([A-Za-z_]\w*)\)", self.src[at:])
        if m is None:
            raise PatternError("syntax error in subpattern name (missing terminator?)", at)
        self.i = at + m.end()
        if any(f.kind == "lookbehind" for f in self.frames):
            raise Unsupported("a back reference inside a lookbehind", at)
        self.references.append((at, m.group(1)))
        self.atom(b"(?P=" + m.group(1) + b")", None)

    def named_reference(self, e: int, at: int) -> None:
        """\\k<name> \\k'name' \\k{name} \\g{name} and \\gN \\g{N} \\g{-N} \\g-N."""
        src = self.src
        m = re.match(
            rb"<(\w+)>|'(\w+)'|\{(\w+)\}" if e == ord("k") else rb"\{(-?\d+|\w+)\}|(-?\d+)", src[self.i :]
        )
        if m is None:
            if e == ord("g") and src[self.i : self.i + 1] in (b"<", b"'"):
                raise Unsupported("\\g<...> subroutine calls are not supported", at)
            raise PatternError("\\k or \\g is not followed by a name or number", at)
        self.i += m.end()
        ref = next(g for g in m.groups() if g is not None)
        if e == ord("k") and ref[:1].isdigit():
            raise PatternError("subpattern name must start with a non-digit", at)
        if re.fullmatch(rb"-?\d+", ref):
            number = int(ref)
            if number == 0:
                raise PatternError("a back reference to group 0", at)
            self.backreference(number if number > 0 else self.groups + 1 + number, at)
            return
        if any(f.kind == "lookbehind" for f in self.frames):
            raise Unsupported("a back reference inside a lookbehind", at)
        self.references.append((at, ref))
        self.atom(b"(?P=" + ref + b")", None)

    # -- classes ----------------------------------------------------------------------------

    def char_class(self) -> None:
        """[...] as the set of bytes it matches, closed under ASCII case when caseless."""
        start, src = self.i, self.src
        if _posix_syntax(src, start) > 0:
            raise PatternError("POSIX named classes are supported only within a class", start)
        self.i += 1
        negate = src[self.i : self.i + 1] == b"^"
        if negate:
            self.i += 1
        members: set[int] = set()
        self.properties = set()
        first = True
        while True:
            if self.i >= len(src):
                raise PatternError("missing terminating ] for character class", len(src))
            if src[self.i] == 0x5D and not first:
                self.i += 1
                break
            quoted = self.class_quoted()
            if quoted is not None:
                members |= quoted
                first = first and not quoted  # \E and \Q\E do not end the class's start
                continue
            first = False
            members |= self.class_item(start)
        caseless = self.frame.caseless
        if caseless:
            members |= {c ^ 0x20 for c in members if c in _ALPHA}
        members |= self.properties  # \p{Lu} is not case-folded, even in a caseless class
        if negate:
            members = set(_ALL - members)
        text = _never(members)
        if caseless and any(c ^ 0x20 not in members for c in members if c in _ALPHA):
            text = b"(?-i:" + text + b")"
        self.atom(text, size=_CLASS_SIZE)

    def class_quoted(self) -> set[int] | None:
        """\\Q...\\E (its bytes) or a lone \\E (nothing) at self.i inside a class, else None."""
        src = self.src
        if src.startswith(b"\\E", self.i):
            self.i += 2
            return set()
        if not src.startswith(b"\\Q", self.i):
            return None
        end = src.find(b"\\E", self.i + 2)
        text = src[self.i + 2 :] if end < 0 else src[self.i + 2 : end]
        self.i = len(src) if end < 0 else end + 2
        return set(text)

    def class_item(self, start: int) -> set[int]:
        """One member, range, escape or [:name:] of a class, as bytes (before case folding)."""
        src = self.src
        low = self.class_single(start)
        if not isinstance(low, int):
            if src[self.i : self.i + 1] == b"-" and src[self.i + 1 : self.i + 2] not in (b"]", b""):
                raise PatternError("invalid range in character class", self.i)
            return set(low)
        if src[self.i : self.i + 1] == b"-" and src[self.i + 1 : self.i + 2] not in (b"]", b""):
            at = self.i
            self.i += 1
            high = self.class_single(start)
            if not isinstance(high, int):
                raise PatternError("invalid range in character class", at)
            if high < low:
                raise PatternError("range out of order in character class", at)
            return set(range(low, high + 1))
        return {low}

    def class_single(self, start: int) -> int | frozenset[int]:
        """A byte, or a set (class escape, [:name:]) at self.i inside a class."""
        src, at = self.src, self.i
        c = src[at]
        if c == 0x5B and _posix_syntax(src, at) > 0:
            return self.posix_class(at)
        if c != 0x5C:
            self.i += 1
            return c
        if at + 1 >= len(src):
            raise PatternError("\\ at end of pattern", at)
        e = src[at + 1]
        self.i = at + 2
        if not _isalnum(e):
            return e
        if e == ord("b"):
            return 0x08
        if e in b"NRXBkKCAzZG":
            raise PatternError("escape sequence is invalid in character class", at)
        if e == ord("g"):
            return e
        if 49 <= e <= 57:
            return e if e >= 56 else self.octal(at)
        if e in b"pP":
            self.properties |= self.property(e, at)
            return frozenset()
        members = self.escaped_set(e, at)
        if members is not None:
            return members
        value = self.escaped_byte(e, at)
        if value is None:
            raise PatternError("unrecognized character follows \\", at)
        return value

    def posix_class(self, at: int) -> frozenset[int]:
        src = self.src
        delim = src[at + 1 : at + 2]
        close = _posix_syntax(src, at)
        if delim != b":":
            raise PatternError("POSIX collating elements are not supported", at)
        name = src[at + 2 : close]
        negate = name.startswith(b"^")
        if negate:
            name = name[1:]
        members = _POSIX.get(name)
        if members is None:
            raise PatternError("unknown POSIX class name", at)
        self.i = close + 2
        if self.frame.caseless and name in (b"upper", b"lower"):
            members = _ALPHA  # PCRE2: caseless [:upper:] and [:lower:] are [:alpha:]
        return _ALL - members if negate else members


def _posix_syntax(src: bytes, at: int) -> int:
    """Where the [:name:] / [.x.] / [=x=] at src[at] ends (its closing delimiter), or -1 if it is not one."""
    term = src[at + 1 : at + 2]
    if src[at : at + 1] != b"[" or term not in (b":", b".", b"="):
        return -1
    i = at + 2
    while i < len(src):
        c = src[i]
        if c == 0x5C and src[i + 1 : i + 2] in (b"]", b"\\"):
            i += 2
            continue
        if (c == 0x5B and src[i + 1 : i + 2] == term) or c == 0x5D:
            return -1
        if src[i : i + 1] == term and src[i + 1 : i + 2] == b"]":
            return i
        i += 1
    return -1


def _byte(value: int, at: int) -> int:
    if value > 0xFF:
        raise PatternError("character code point value in \\x{} or \\o{} is too large", at)
    return value


def _isalnum(b: int) -> bool:
    return 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122
