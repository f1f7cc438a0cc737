"""Compiled tables of one class, searched first-match-wins exactly as Postfix searches them.

Postfix tries every rule in order. With thousands of rules that is thousands of regex runs per
header, so each rule gets a required literal (a run of characters every match must contain) and
the rarest 3-byte piece of it indexes the rule. A header then only runs the rules whose piece it
contains, plus the few rules without one (negated, alternations, verbose patterns), still in
table order, so the first match is the one Postfix would find. Before that, a rule anchored to
header names (`/^Subject:/`, `/^(To|Cc):/`) is only tried on text whose name (up to the first
colon) is one of them: a header no rule names costs no more than its name lookup, and a long
header whose name few rules name looks up those rules' pieces instead of being cut into all of
its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import partial
from typing import Any

import regex

from mailwarden.rules.pcre import translate_pcre
from mailwarden.rules.posix import translate_posix
from mailwarden.rules.replace import Replacement
from mailwarden.rules.table import CompileError, Kind, Op, ParsedTable, Pattern, RuleSpec
from mailwarden.rules.translate import PatternError, Translated, Unsupported

LOG = logging.getLogger("mailwarden.rules")
GRAM = 3
# `^Name:`, `^(Name|Other):` or `^(?:Name|Other):` at the start of a pattern.
_NAMED = re.compile(rb"\^(?:\((?:\?:)?((?:[A-Za-z0-9-]+\|)*[A-Za-z0-9-]+)\)|([A-Za-z0-9-]+)):")


def header_names(pattern: Pattern) -> frozenset[bytes] | None:
    """The lower-case names a text must start with (before its first colon) for `pattern` to
    match it, or None when the pattern does not say. Any text matching `^Name:` starts with
    `Name:`, so its part before the first colon is Name, whatever the case flags; multi-line
    (`m`: ^ after any newline), verbose or basic-syntax (`x`) patterns are left out."""
    if pattern.negate or "m" in pattern.flags or "x" in pattern.flags:
        return None
    found = _NAMED.match(pattern.source)
    if found is None or _may_branch(pattern.source[found.end():]):
        return None
    return frozenset(n.lower() for n in (found[1] or found[2]).split(b"|"))


def _may_branch(rest: bytes) -> bool:
    """Whether `rest` may hold a `|` outside every group (`^A:x|y` also matches "y"). Cautious:
    a character class with a backslash (literal in POSIX, an escape in PCRE) or \\Q counts."""
    if b"|" not in rest:
        return False
    if b"\\Q" in rest:
        return True
    depth, i, n = 0, 0, len(rest)
    while i < n:
        c = rest[i : i + 1]
        if c == b"\\":
            i += 2
            continue
        if c == b"[":
            j = i + 1
            if rest[j : j + 1] == b"^":
                j += 1
            if rest[j : j + 1] == b"]":  # a leading ] is a member
                j += 1
            end = rest.find(b"]", j)
            if end < 0 or b"\\" in rest[i:end] or b"[" in rest[i + 1 : end]:
                return True
            i = end + 1
            continue
        if c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
        elif c == b"|" and depth <= 0:
            return True
        i += 1
    return False


@dataclass(frozen=True, slots=True)
class Code:
    """One compiled pattern: the regex, how to run it, and its prefilter literals."""

    regex: Any
    anchored: bool
    literals: tuple[bytes, ...]
    warnings: tuple[tuple[int, str], ...] = ()
    """(offset in the pattern, text) for `rules check`: see Translated.warnings."""


def compile_pattern(kind: Kind, pattern: Pattern, max_sub: int) -> Code:
    """The `Compiler` for table.parse_table: translate, compile, check $n against the groups."""
    try:
        if kind is Kind.PCRE:
            tr = translate_pcre(pattern.source, pattern.flags)
        else:
            tr = translate_posix(pattern.source, pattern.flags, max_sub > 0)
    except PatternError as exc:
        reason = f"error in regex at offset {exc.offset}: {exc.reason}: skipping this rule"
        raise CompileError(reason, exc.offset) from None
    except Unsupported as exc:
        reason = f"not supported by mailwarden: {exc.reason}: skipping this rule"
        raise CompileError(reason, exc.offset) from None
    try:
        compiled = regex.compile(tr.pattern, tr.flags)
    except (regex.error, OverflowError, ValueError, RecursionError) as exc:
        pos = getattr(exc, "pos", None)
        raise CompileError(f"error in regex: {exc}: skipping this rule", pos or 0) from None
    if max_sub > compiled.groups:
        raise CompileError(f'out of range replacement index "{max_sub}": skipping this rule')
    literals = () if pattern.negate else required_literals(tr)
    return Code(compiled, tr.anchored, literals, tr.warnings)


@dataclass(frozen=True, slots=True)
class Rule:
    """A match rule or an IF, flattened; `scope` lists the indices of the IFs around it."""

    index: int
    op: Op
    path: str
    line: int
    negate: bool
    code: Code
    code2: Code | None
    negate2: bool
    replacement: Replacement | None
    result_text: bytes
    scope: tuple[int, ...]
    guard: bytes


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    result: bytes


class RuleTimeout(Exception):
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        super().__init__(f"{rule.path}:{rule.line}: regex timeout")


class Matcher:
    """All tables of one class, in load order."""

    def __init__(
        self,
        tables: Sequence[ParsedTable],
        timeout: float = 0.1,
    ) -> None:
        self.timeout = timeout
        rules: list[Rule] = []
        raw = _flatten(tables)
        counts: dict[bytes, int] = {}
        for _, spec, _ in raw:
            for g in {lit[i : i + GRAM] for lit in spec.code.literals for i in range(len(lit) - GRAM + 1)}:
                counts[g] = counts.get(g, 0) + 1
        index: dict[bytes, list[int]] = {}
        always: list[int] = []
        for idx, (path, spec, scope) in enumerate(raw):
            best = _rarest_gram(spec.code.literals, counts)
            guard = b""
            if best is not None:
                index.setdefault(best[1], []).append(idx)
                guard = best[2]
            elif spec.op is Op.MATCH:
                always.append(idx)
            second = spec.second
            rules.append(
                Rule(
                    idx,
                    spec.op,
                    path,
                    spec.line,
                    spec.pattern is not None and spec.pattern.negate,
                    spec.code,
                    spec.code2,
                    second.negate if second is not None else False,
                    spec.replacement,
                    spec.result_text,
                    scope,
                    guard,
                )
            )
        self.rules = tuple(rules)
        match_index = {g: tuple(i for i in ids if rules[i].op is Op.MATCH) for g, ids in index.items()}
        self._grams = _Grams({g: ids for g, ids in match_index.items() if ids}, tuple(always))
        # Counted once: RuleSet.matcher asks for it on every header lookup.
        self._size = sum(1 for r in self.rules if r.op is Op.MATCH)
        named = {idx: header_names(spec.pattern) for idx, (_, spec, _) in enumerate(raw)
                 if spec.op is Op.MATCH and spec.pattern is not None}
        self._names = {idx: names for idx, names in named.items() if names is not None}
        # When every rule names its headers, a text with none of those names skips the search.
        self._only_names: frozenset[bytes] | None = None
        if len(self._names) == self._size:
            self._only_names = frozenset(n for names in self._names.values() for n in names)
        # Per header name, the pieces of only the rules that may match it (its own and the
        # unnamed): few enough that testing each against a long header beats cutting the header
        # into all its pieces, and no candidate's names need checking again. Built for a handful
        # of names only (the cost is names x pieces).
        self._by_name: dict[bytes, _Grams] = {}
        all_names = {n for names in self._names.values() for n in names}
        if len(all_names) <= 64:
            for name in all_names:
                self._by_name[name] = self._grams.only(partial(self._may_match, name))

    def __len__(self) -> int:
        return self._size

    def skips(self, name: bytes) -> bool:
        """Whether no rule can match a header of this name (as bytes, ASCII lower case), so the
        header need not even be looked up."""
        return not self.rules or (self._only_names is not None and name not in self._only_names)

    def _may_match(self, name: bytes, idx: int) -> bool:
        """Whether rule `idx` may match a header of this name (it names no header, or this one)."""
        names = self._names.get(idx)
        return names is None or name in names

    def candidates(self, lowered: bytes) -> list[int]:
        """The rules that may match `lowered` (the text in lower case), in table order."""
        name = lowered[: lowered.find(b":")] if b":" in lowered else None
        if self._only_names is not None and name not in self._only_names:
            return []
        if name is not None and (grams := self._by_name.get(name)) is not None:
            return grams.candidates(lowered, by_name=True)
        if self._names:
            return [i for i in self._grams.candidates(lowered) if name is None or self._may_match(name, i)]
        return self._grams.candidates(lowered)

    def lookup(
        self,
        text: bytes,
        timeouts: list[Rule] | None = None,
        disabled: AbstractSet[tuple[str, int]] = frozenset(),
    ) -> Hit | None:
        """The first rule matching `text` and its result with $n substituted, or None.

        A rule whose regex times out counts as not matching and is appended to `timeouts`; a rule
        whose (path, line) is in `disabled` is not run (see rules.session.Penalties).
        """
        if not self.rules:
            return None
        lowered = text.lower()
        ifs: dict[int, bool] = {}
        for idx in self.candidates(lowered):
            rule = self.rules[idx]
            if disabled and (rule.path, rule.line) in disabled:
                continue
            if rule.scope and not all(self._if_true(s, text, lowered, ifs, timeouts) for s in rule.scope):
                continue
            if rule.guard and rule.guard not in lowered:
                continue
            m = self._run(rule, rule.code, text, timeouts)
            if (m is not None) == rule.negate:
                continue
            if (
                rule.code2 is not None
                and (self._run(rule, rule.code2, text, timeouts) is not None) == rule.negate2
            ):
                continue
            assert rule.replacement is not None
            literal = rule.replacement.literal
            if literal is not None:
                return Hit(rule, literal)
            assert m is not None
            return Hit(rule, rule.replacement.expand(m.group))
        return None

    def _if_true(
        self, idx: int, text: bytes, lowered: bytes, cache: dict[int, bool], timeouts: list[Rule] | None
    ) -> bool:
        known = cache.get(idx)
        if known is not None:
            return known
        rule = self.rules[idx]
        if rule.scope and not all(self._if_true(s, text, lowered, cache, timeouts) for s in rule.scope):
            result = False
        elif rule.guard and rule.guard not in lowered:
            result = rule.negate
        else:
            result = (self._run(rule, rule.code, text, timeouts) is not None) != rule.negate
        cache[idx] = result
        return result

    def _run(self, rule: Rule, code: Code, text: bytes, timeouts: list[Rule] | None) -> Any:
        try:
            if code.anchored:
                return code.regex.match(text, timeout=self.timeout, concurrent=True)
            return code.regex.search(text, timeout=self.timeout, concurrent=True)
        except TimeoutError:
            if timeouts is not None:
                timeouts.append(rule)
            LOG.warning("%s, line %d: regex timeout after %.3fs", rule.path, rule.line, self.timeout)
            return None


class _Grams:
    """Rules indexed by the rarest 3-byte piece of their literals, and those without one."""

    __slots__ = ("always", "index", "keys")

    def __init__(self, index: dict[bytes, tuple[int, ...]], always: tuple[int, ...]) -> None:
        self.index = index
        self.keys = frozenset(index)
        self.always = always

    def only(self, keep: Callable[[int], bool]) -> _Grams:
        """The same index with only the rules `keep` accepts."""
        index = {g: kept for g, ids in self.index.items() if (kept := tuple(i for i in ids if keep(i)))}
        return _Grams(index, tuple(i for i in self.always if keep(i)))

    def candidates(self, lowered: bytes, by_name: bool = False) -> list[int]:
        index = self.index
        if len(lowered) < GRAM or not index:
            return list(self.always)
        hits: Iterable[bytes]
        if by_name and len(index) < len(lowered):  # few pieces against a long header
            hits = [g for g in index if g in lowered]
        else:
            present = {lowered[i : i + GRAM] for i in range(len(lowered) - GRAM + 1)}
            hits = self.keys & present if len(present) < len(self.keys) else present & self.keys
        if not hits:
            return list(self.always)
        ids: list[int] = list(self.always)
        for g in hits:
            ids.extend(index[g])
        ids.sort()
        return ids


def _flatten(tables: Sequence[ParsedTable]) -> list[tuple[str, RuleSpec, tuple[int, ...]]]:
    """(path, rule, indices of the IFs around it) for every match rule and IF, in table order."""
    raw: list[tuple[str, RuleSpec, tuple[int, ...]]] = []
    for table in tables:
        stack: list[int] = []
        for spec in table.rules:
            if spec.op is Op.ENDIF:
                stack.pop()
                continue
            assert spec.pattern is not None
            raw.append((table.path, spec, tuple(stack)))
            if spec.op is Op.IF:
                stack.append(len(raw) - 1)
    return raw


def _rarest_gram(literals: tuple[bytes, ...], counts: dict[bytes, int]) -> tuple[int, bytes, bytes] | None:
    """(count, gram, literal) of the rarest 3-byte piece of the rule's literals, if it has one."""
    best: tuple[int, bytes, bytes] | None = None
    for lit in literals:
        for i in range(len(lit) - GRAM + 1):
            g = lit[i : i + GRAM]
            if best is None or counts[g] < best[0]:
                best = (counts[g], g, lit)
    return best


def required_literals(tr: Translated) -> tuple[bytes, ...]:
    """Runs of bytes every match must contain (lowercased), from a translated pattern; () if unsure."""
    if not tr.literal_safe:
        return ()
    runs = _Literals(tr.pattern).runs()
    return tuple(r for r in runs if len(r) >= GRAM) if runs is not None else ()


class _Literals:
    """One pass over a translated pattern, collecting the literal runs outside groups and classes."""

    def __init__(self, p: bytes) -> None:
        self.p = p
        self.found: list[bytes] = []
        self.cur = bytearray()
        self.last_literal = False

    def flush(self) -> None:
        if self.cur:
            self.found.append(bytes(self.cur).lower())
            self.cur.clear()
        self.last_literal = False

    def literal(self, c: int) -> None:
        self.cur.append(c)
        self.last_literal = True

    def runs(self) -> list[bytes] | None:
        """The runs, or None when the pattern has a top-level alternation (or cannot be read)."""
        p, i = self.p, 0
        while i < len(p):
            c = p[i]
            if c == 0x7C:
                return None
            if c == 0x5C:
                i = self.escape(i)
            elif c == 0x5B:
                self.flush()
                i = _skip_class(p, i)
            elif c == 0x28:
                self.flush()
                i = _skip_group(p, i)
                if i < 0:
                    return None
            elif c in b"*?{":
                i = self.quantifier(i)
            elif c in b"+.^$":
                self.flush()
                i += 1
            else:
                self.literal(c)
                i += 1
        self.flush()
        return self.found

    def escape(self, i: int) -> int:
        e = self.p[i + 1] if i + 1 < len(self.p) else 0
        if e and not (48 <= e <= 57 or 65 <= e <= 90 or 97 <= e <= 122):
            self.literal(e)
            return i + 2
        self.flush()
        return i + (4 if e == 0x78 else 2)

    def quantifier(self, i: int) -> int:
        """A quantifier that may repeat zero times takes the previous byte out of the run."""
        p = self.p
        at_least_once = p[i] == 0x7B and regex.match(rb"\{[1-9]", p[i:]) is not None
        if not at_least_once and self.last_literal and self.cur:
            self.cur.pop()
        self.flush()
        if p[i] != 0x7B:
            return i + 1
        close = p.find(b"}", i)
        return len(p) if close < 0 else close + 1


def _skip_class(p: bytes, i: int) -> int:
    n = len(p)
    i += 1
    if p[i : i + 1] == b"^":
        i += 1
    if p[i : i + 1] == b"]":
        i += 1
    while i < n:
        if p[i] == 0x5C:
            i += 2
            continue
        if p[i] == 0x5B and p[i + 1 : i + 2] == b":":
            close = p.find(b":]", i + 2)
            if close > 0:
                i = close + 2
                continue
        if p[i] == 0x5D:
            return i + 1
        i += 1
    return n


def _skip_group(p: bytes, i: int) -> int:
    depth = 0
    n = len(p)
    while i < n:
        c = p[i]
        if c == 0x5C:
            i += 2
            continue
        if c == 0x5B:
            i = _skip_class(p, i)
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1
