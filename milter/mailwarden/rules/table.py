"""Parse Postfix pcre:/regexp: table files, line for line as dict_pcre.c and dict_regexp.c do.

Parsing is pure: no regular expression is compiled here. Each rule keeps its source line so a
problem (and every match) can be reported as file:line. Postfix never refuses a whole table: a bad
rule is skipped with a warning, and so are we; `Problem` records why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailwarden.rules.replace import Replacement, ReplacementError, prescan


class Kind(StrEnum):
    PCRE = "pcre"
    REGEXP = "regexp"


class Op(StrEnum):
    MATCH = "match"
    IF = "if"
    ENDIF = "endif"


PCRE_FLAGS = "imsxAEUX"
REGEXP_FLAGS = "imx"
_SPACE = b" \t\n\v\f\r"


@dataclass(frozen=True, slots=True)
class Problem:
    """One warning Postfix would log, or one rule mailwarden refuses. `skipped`: the rule is dropped."""

    path: str
    line: int
    column: int
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Pattern:
    source: bytes
    flags: str
    negate: bool
    column: int
    """1-based column of the pattern's first character in the logical line."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    op: Op
    line: int
    pattern: Pattern | None = None
    second: Pattern | None = None
    """regexp tables only: the obsolete `/pat1/!/pat2/` second pattern."""
    replacement: Replacement | None = None
    result_text: bytes = b""
    code: Any = None
    """The compiled pattern (whatever the `Compiler` returned)."""
    code2: Any = None


class CompileError(Exception):
    """Raised by a `Compiler`: the rule is skipped, reported at `column` (0: the pattern's start)."""

    def __init__(self, reason: str, column: int = 0) -> None:
        self.reason = reason
        self.column = column
        super().__init__(reason)


Compiler = Callable[[Kind, Pattern, int], Any]
"""(table kind, pattern, highest $n used) -> compiled pattern, or raise CompileError."""


@dataclass(slots=True)
class ParsedTable:
    path: str
    kind: Kind
    rules: list[RuleSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def kind_for(path: str) -> Kind | None:
    if path.endswith(".pcre"):
        return Kind.PCRE
    if path.endswith(".regexp"):
        return Kind.REGEXP
    return None


def logical_lines(data: bytes) -> Iterator[tuple[int, bytes] | tuple[int, None]]:
    """(first line number, logical line) as readllines() builds them.

    Continuation lines (leading whitespace) are appended as they are, whitespace included; comment
    and blank lines are dropped without ending a logical line. A logical line that itself starts
    with whitespace is yielded as (line, None): Postfix warns and drops it.
    """
    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    buf: bytes | None = None
    first = 0
    for number, line in enumerate(physical, 1):
        stripped = line.lstrip(_SPACE)
        if not stripped or stripped.startswith(b"#"):
            continue
        if line[:1] in (b" ", b"\t", b"\v", b"\f", b"\r") and buf is not None:
            buf += line
            continue
        if buf is not None:
            yield _finish(first, buf)
        buf, first = line, number
    if buf is not None:
        yield _finish(first, buf)


def _finish(first: int, buf: bytes) -> tuple[int, bytes] | tuple[int, None]:
    if buf[:1] in (b" ", b"\t", b"\v", b"\f", b"\r"):
        return first, None
    return first, buf.rstrip(_SPACE)


def parse_table(path: str, data: bytes, kind: Kind, compiler: Compiler) -> ParsedTable:
    table = ParsedTable(path, kind)
    nesting = 0
    for line, text in logical_lines(data):
        if text is None:
            table.problems.append(Problem(path, line, 1, "logical line must not start with whitespace"))
            continue
        parser = _RuleParser(table, line, text, compiler)
        rule = parser.parse(nesting)
        if rule is None:
            continue
        if rule.op is Op.IF:
            nesting += 1
        elif rule.op is Op.ENDIF:
            nesting -= 1
        table.rules.append(rule)
    if nesting:
        if kind is Kind.PCRE:
            open_ifs = [r for r in table.rules if r.op is not Op.MATCH]
            stack: list[RuleSpec] = []
            for r in open_ifs:
                if r.op is Op.IF:
                    stack.append(r)
                else:
                    stack.pop()
            for r in reversed(stack):
                table.problems.append(Problem(path, r.line, 1, "IF has no matching ENDIF", skipped=False))
        else:
            last = max((r.line for r in table.rules), default=0)
            table.problems.append(Problem(path, last, 1, "more IFs than ENDIFs", skipped=False))
    return table


def _isalnum(b: int) -> bool:
    return 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122


class _RuleParser:
    def __init__(self, table: ParsedTable, line: int, text: bytes, compiler: Compiler) -> None:
        self.table = table
        self.compiler = compiler
        self.line = line
        self.text = text
        self.pos = 0

    def problem(self, reason: str, column: int | None = None, skipped: bool = True) -> None:
        col = self.pos + 1 if column is None else column
        self.table.problems.append(Problem(self.table.path, self.line, col, reason, skipped))

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def parse(self, nesting: int) -> RuleSpec | None:
        text = self.text
        if not _isalnum(text[0]):
            return self.parse_match()
        if text[:2].lower() == b"if" and (len(text) == 2 or not _isalnum(text[2])):
            self.pos = 2
            self.skip_space()
            pattern = self.get_pattern()
            if pattern is None:
                return None
            self.skip_space()
            if self.pos < len(text):
                extra = text[self.pos :].decode("utf-8", "replace")
                self.problem(f'ignoring extra text after IF statement: "{extra}"', skipped=False)
            code = self.compile(pattern, 0)
            if code is None:
                return None
            return RuleSpec(Op.IF, self.line, pattern, code=code)
        if text[:5].lower() == b"endif" and (len(text) == 5 or not _isalnum(text[5])):
            if nesting == 0:
                self.problem("ignoring ENDIF without matching IF", 1)
                return None
            self.pos = 5
            self.skip_space()
            if self.pos < len(text):
                self.problem("ignoring extra text after ENDIF", skipped=False)
            return RuleSpec(Op.ENDIF, self.line)
        self.problem("ignoring unrecognized request", 1)
        return None

    def parse_match(self) -> RuleSpec | None:
        pattern = self.get_pattern()
        if pattern is None:
            return None
        second = None
        if self.table.kind is Kind.REGEXP and self.text[self.pos : self.pos + 1] == b"!":
            second = self.get_pattern()
            if second is None:
                return None
        self.skip_space()
        result = self.text[self.pos :]
        if not result:
            reason = (
                "no replacement text: using empty string"
                if self.table.kind is Kind.PCRE
                else "using empty replacement string"
            )
            self.problem(reason, skipped=False)
        try:
            replacement = prescan(result)
        except ReplacementError as exc:
            for reason in exc.reasons:
                self.problem(reason, self.pos + 1 + exc.offset, skipped=False)
            self.problem("bad replacement syntax: skipping this rule", self.pos + 1 + exc.offset)
            return None
        if replacement.max_sub > 0 and pattern.negate:
            self.problem("$number found in negative match replacement text: skipping this rule", 1)
            return None
        code = self.compile(pattern, replacement.max_sub)
        if code is None:
            return None
        code2 = None
        if second is not None:
            code2 = self.compile(second, 0)
            if code2 is None:
                return None
        return RuleSpec(Op.MATCH, self.line, pattern, second, replacement, result, code, code2)

    def compile(self, pattern: Pattern, max_sub: int) -> Any:
        try:
            return self.compiler(self.table.kind, pattern, max_sub)
        except CompileError as exc:
            self.problem(exc.reason, pattern.column + exc.column)
            return None

    def get_pattern(self) -> Pattern | None:
        text, n = self.text, len(self.text)
        negate = False
        if self.table.kind is Kind.PCRE:
            while self.pos < n and (text[self.pos] == 0x21 or text[self.pos] in _SPACE):
                negate ^= text[self.pos] == 0x21
                self.pos += 1
        else:
            while self.pos < n and text[self.pos] == 0x21:
                negate = not negate
                self.pos += 1
            self.skip_space()
        if self.pos >= n:
            self.problem("no regexp: skipping this rule")
            return None
        delim = text[self.pos]
        self.pos += 1
        start = self.pos
        while self.pos < n:
            c = text[self.pos]
            if c == 0x5C:
                if self.pos + 1 >= n:
                    self.pos = n
                    break
                self.pos += 2
                continue
            if c == delim:
                break
            self.pos += 1
        if self.pos >= n:
            verb = "ignoring" if self.table.kind is Kind.PCRE else "skipping"
            self.problem(f'no closing regexp delimiter "{chr(delim)}": {verb} this rule', start)
            return None
        source = text[start : self.pos]
        self.pos += 1
        flag_start = self.pos
        allowed = PCRE_FLAGS if self.table.kind is Kind.PCRE else REGEXP_FLAGS
        while self.pos < n and text[self.pos] not in _SPACE:
            flag = chr(text[self.pos])
            if self.table.kind is Kind.REGEXP and flag == "!":
                break
            if flag not in allowed:
                self.problem(f'unknown regexp option "{flag}": skipping this rule')
                return None
            if flag == "X":
                self.problem(f'ignoring obsolete regexp option "{flag}"', skipped=False)
            self.pos += 1
        flags = text[flag_start : self.pos].decode("ascii")
        return Pattern(source, flags, negate, start + 1)
