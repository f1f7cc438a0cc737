"""Random header_checks tables from the whole pcre_table(5) / regexp_table(5) grammar.

Patterns are built from atoms (literals, 8-bit bytes, escapes of every kind, brackets with
classes, ranges, equivalence classes and collating symbols, anchors, groups, back references,
lookarounds for pcre), quantifiers (including glibc's `{,n}` and bounds past the limits) and
alternation; tables add flags, `!/re/`, `if`/`endif` blocks, `$n` results, comments and
continuation lines. Subjects are drawn from the same small alphabet so that rules match often.
"""

from __future__ import annotations

import random

ALPHABET = b"aAbBxX-: .0\t\n_"
HEADER_NAMES = [b"Subject", b"X-Ab", b"to", b"X-A-B", b"Xa"]
ESCAPABLE = b"abdhknpstvwxyzADHNPRSVWXZbBefr0123456789.[](){}*+?|^$\\/<>`'-:# \xe9"
PCRE_ONLY = [
    b"\\d",
    b"\\D",
    b"\\h",
    b"\\H",
    b"\\v",
    b"\\V",
    b"\\N",
    b"\\R",
    b"\\x41",
    b"\\x{62}",
    b"\\e",
    b"\\t",
    b"\\n",
    b"\\p{L}",
    b"\\p{Lu}",
    b"\\P{Ll}",
    b"\\p{Xwd}",
    b"\\p{Latin}",
    b"\\pL",
    b"\\Qa.b\\E",
    b"(?i)",
    b"(?-i)",
    b"(?=a)",
    b"(?!b)",
    b"(?<=a)",
    b"(?<!b)",
    b"(?<=a|bb)",
    b"(?<=a+)",
    b"(?>a+)",
    b"\\A",
    b"\\z",
    b"\\Z",
    b"\\G",
]
CLASSES = [b"alpha", b"upper", b"lower", b"digit", b"space", b"punct", b"alnum", b"xdigit", b"blank"]


class Generator:
    def __init__(self, rng: random.Random, pcre: bool) -> None:
        self.rng = rng
        self.pcre = pcre
        self.groups = 0

    def pattern(self) -> bytes:
        self.groups = 0
        return self.alternation(0)

    def alternation(self, depth: int) -> bytes:
        branches = [self.branch(depth)]
        while self.rng.random() < 0.15:
            branches.append(self.branch(depth))
        return b"|".join(branches)

    def branch(self, depth: int) -> bytes:
        rng = self.rng
        parts = [b"^"] if rng.random() < 0.3 else []
        for _ in range(rng.randint(0 if depth else 1, 4)):
            atom = self.atom(depth)
            if rng.random() < 0.3:
                atom += self.quantifier()
            parts.append(atom)
        if rng.random() < 0.1:
            parts.append(b"$")
        return b"".join(parts)

    def atom(self, depth: int) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return bytes([rng.choice(ALPHABET)])
        if r < 0.45:
            return b"\\" + bytes([rng.choice(ESCAPABLE)])
        if r < 0.6:
            return self.bracket()
        if r < 0.65:
            return b"."
        if r < 0.75 and depth < 3:
            self.groups += 1
            prefix = rng.choice([b"", b"", b"?:"]) if self.pcre else b""
            return b"(" + prefix + self.alternation(depth + 1) + b")"
        if r < 0.8 and self.groups:
            return b"\\%d" % rng.randint(1, self.groups + 1)
        if self.pcre and r < 0.92:
            return rng.choice(PCRE_ONLY)
        return rng.choice([b"\\w", b"\\W", b"\\s", b"\\S", b"\\b", b"\\B", b"\\<", b"\\>", b"\\`", b"\\'"])

    def quantifier(self) -> bytes:
        rng = self.rng
        q = rng.choice([b"*", b"+", b"?", b"{2}", b"{1,}", b"{0,2}", b"{,2}", b"*", b"+", b"?"])
        if rng.random() < 0.05:
            q = rng.choice([b"{,}", b"{2,1}", b"{70000}", b"{1,2,3}", b"{}"])
        if self.pcre and rng.random() < 0.3:
            q += rng.choice([b"?", b"+"])
        return q

    def bracket(self) -> bytes:
        rng = self.rng
        out = bytearray(b"[")
        if rng.random() < 0.3:
            out += b"^"
        if rng.random() < 0.1:
            out += b"]"
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            if r < 0.4:
                out.append(rng.choice(ALPHABET + b"[\\^-]"))
            elif r < 0.6:
                lo, hi = sorted(rng.sample(b"-0:AZ[`az~\xe9", 2))
                if rng.random() < 0.1:
                    lo, hi = hi, lo
                out += bytes([lo, 0x2D, hi])
            elif r < 0.85:
                out += b"[:" + rng.choice(CLASSES) + b":]"
            elif r < 0.92:
                out += b"[=" + bytes([rng.choice(b"aAb-")]) + b"=]"
            elif self.pcre:
                out += rng.choice([b"\\d", b"\\w", b"\\h", b"\\v", b"\\x41", b"\\p{Lu}", b"\\n"])
            else:
                out += b"[." + bytes([rng.choice(b"aA-")]) + b".]"
        if rng.random() < 0.1:
            out += b"-"
        return bytes(out + b"]")

    def flags(self) -> str:
        pool = "imsxAEU" if self.pcre else "imx"
        return "".join(sorted(set(self.rng.sample(pool, self.rng.choice([0, 0, 0, 1, 1, 2])))))

    def rule(self, index: int) -> bytes:
        """One rule: [!]/pattern/flags [!/pattern2/] INFO r<index> [$n...], sometimes continued."""
        rng = self.rng
        head = self.delimited()
        negate = rng.random() < 0.1
        if not self.pcre and rng.random() < 0.1:
            head += b"!" + self.delimited()  # regexp's obsolete second pattern: no $n from it
        result = b"INFO r%d" % index
        if self.groups and not negate and rng.random() < 0.7:
            for _ in range(rng.randint(1, 2)):
                n = rng.randint(1, self.groups + (rng.random() < 0.05))
                result += b" [" + rng.choice([b"$%d", b"${%d}", b"$(%d)", b"$$%d"]) % n + b"]"
        r = rng.random()
        if r < 0.03:
            result = rng.choice([b"", b"INFO ${1", b"INFO $0", b"INFO $x", b"INFO $"])
        elif r < 0.06:
            result += b"\n\t continued"  # a continuation line joins the result
        if self.pcre and rng.random() < 0.02:
            head += b"X"
        return (b"!" if negate else b"") + head + b" " + result

    def delimited(self) -> bytes:
        pat = self.pattern()
        if self.rng.random() < 0.9:
            pat = pat.replace(b"\n", b" ")  # a raw newline cuts the rule in two lines
        delim = b"/" if b"/" not in pat else b"~"
        return delim + pat.replace(delim, b"") + delim + self.flags().encode()

    def table(self, size: int) -> bytes:
        rng = self.rng
        lines: list[bytes] = []
        depth = 0
        for i in range(size):
            r = rng.random()
            if r < 0.08:
                lines.append(b"if " + (b"!" if rng.random() < 0.2 else b"") + b"/" + self.simple() + b"/")
                depth += 1
            elif r < 0.14 and depth:
                lines.append(b"endif")
                depth -= 1
            elif r < 0.17:
                lines.append(b"# comment " + bytes([rng.choice(ALPHABET)]))
            elif r < 0.19:
                lines.append(b" " + self.rule(i))  # indented: joined to the line above
            else:
                lines.append(self.rule(i))
        lines.extend([b"endif"] * depth)
        return b"\n".join(lines) + b"\n"

    def simple(self) -> bytes:
        return bytes([self.rng.choice(b"^aAbX")]) + bytes([self.rng.choice(b"abx-:")])

    def subject(self) -> bytes:
        rng = self.rng
        name = rng.choice(HEADER_NAMES)
        value = bytes(rng.choice(ALPHABET + b"\xe9\xc9[]~") for _ in range(rng.randint(0, 10)))
        value = value.replace(b"\n", b"\n ")
        return name + b": " + value

    def message(self, keys: int) -> bytes:
        return b"\n".join(self.subject() for _ in range(keys)) + b"\n\n"
