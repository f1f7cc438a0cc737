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
    hint: str = ""
    """What `rules check` adds to Postfix's text, e.g. which rule a warning means is lost."""

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.path}:{self.line}:{self.column}: {self.reason}{hint}"


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


@dataclass(frozen=True, slots=True)
class LogicalLine:
    line: int
    """The number of its first physical line."""
    text: bytes | None
    """None: the line starts with whitespace (Postfix warns and drops it)."""
    joined: tuple[tuple[int, int], ...] = ()
    """(offset in text, physical line number) of each continuation line appended to it."""

    def line_at(self, offset: int) -> int:
        """The physical line that the byte at `offset` of the text came from."""
        return max((n for at, n in self.joined if at <= offset), default=self.line)


def logical_lines(data: bytes) -> Iterator[LogicalLine]:
    """Logical lines as readllines() builds them.

    Continuation lines (leading whitespace) are appended as they are, whitespace included; comment
    and blank lines are dropped without ending a logical line.
    """
    physical = data.split(b"\n")
    if physical and physical[-1] == b"":
        physical.pop()
    buf: bytes | None = None
    first = 0
    joined: list[tuple[int, int]] = []
    for number, line in enumerate(physical, 1):
        stripped = line.lstrip(_SPACE)
        if not stripped or stripped.startswith(b"#"):
            continue
        if line[:1] in (b" ", b"\t", b"\v", b"\f", b"\r") and buf is not None:
            joined.append((len(buf) + len(line) - len(stripped), number))
            buf += line
            continue
        if buf is not None:
            yield _finish(first, buf, joined)
        buf, first, joined = line, number, []
    if buf is not None:
        yield _finish(first, buf, joined)


def _finish(first: int, buf: bytes, joined: list[tuple[int, int]]) -> LogicalLine:
    if buf[:1] in (b" ", b"\t", b"\v", b"\f", b"\r"):
        return LogicalLine(first, None)
    return LogicalLine(first, buf.rstrip(_SPACE), tuple(joined))


def parse_table(path: str, data: bytes, kind: Kind, compiler: Compiler) -> ParsedTable:
    table = ParsedTable(path, kind)
    nesting = 0
    for logical in logical_lines(data):
        if logical.text is None:
            reason = "logical line must not start with whitespace"
            table.problems.append(Problem(path, logical.line, 1, reason))
            continue
        parser = _RuleParser(table, logical, compiler)
        rule = parser.parse(nesting)
        if rule is None:
            continue
        if rule.op is Op.IF:
            nesting += 1
        elif rule.op is Op.ENDIF:
            nesting -= 1
        table.rules.append(rule)
    if nesting:
        stack: list[RuleSpec] = []
        for r in table.rules:
            if r.op is Op.IF:
                stack.append(r)
            elif r.op is Op.ENDIF:
                stack.pop()
        for r in reversed(stack):
            hint = "every rule after it, to the end of the table, depends on it"
            table.problems.append(Problem(path, r.line, 1, "IF has no matching ENDIF", False, hint))
    return table


def _isalnum(b: int) -> bool:
    return 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122


class _RuleParser:
    def __init__(self, table: ParsedTable, logical: LogicalLine, compiler: Compiler) -> None:
        self.table = table
        self.compiler = compiler
        self.logical = logical
        self.line = logical.line
        assert logical.text is not None
        self.text = logical.text
        self.pos = 0

    def problem(self, reason: str, column: int | None = None, skipped: bool = True, hint: str = "") -> None:
        col = self.pos + 1 if column is None else column
        self.table.problems.append(Problem(self.table.path, self.line, col, reason, skipped, hint))

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def parse(self, nesting: int) -> RuleSpec | None:
        text = self.text
        if not _isalnum(text[0]):
            return self.parse_match()
        if text[:2].lower() == b"if" and (len(text) == 2 or not _isalnum(text[2])):
            return self.parse_if()
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

    def parse_if(self) -> RuleSpec | None:
        text = self.text
        self.pos = 2
        self.skip_space()
        pattern = self.get_pattern()
        if pattern is None:
            return None
        self.skip_space()
        if self.pos < len(text):
            extra = text[self.pos :].decode("utf-8", "replace")
            self.problem(f'ignoring extra text after IF statement: "{extra}"', skipped=False)
            # Postfix's guess at the cause, which is right when the text came from a
            # continuation line: an indented rule below the IF, which is then lost.
            lost = self.logical.line_at(self.pos)
            hint = f"the rule on line {lost} is indented, joined to this IF, and lost"
            hint = "" if lost == self.line else hint
            reason = "do not prepend whitespace to statements between IF and ENDIF"
            self.problem(reason, 1, skipped=False, hint=hint)
        code = self.compile(pattern, 0)
        if code is None:
            return None
        return RuleSpec(Op.IF, self.line, pattern, code=code)

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
            self.problem("no replacement text: using empty string", skipped=False)
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
        negate = self.negation()
        text, n = self.text, len(self.text)
        if self.pos >= n:
            self.problem("no regexp: skipping this rule")
            return None
        delim = text[self.pos]
        self.pos += 1
        start = self.pos
        while self.pos < n:
            if text[self.pos] == 0x5C:  # an escaped character, the delimiter too
                self.pos = n if self.pos + 1 >= n else self.pos + 2
            elif text[self.pos] == delim:
                break
            else:
                self.pos += 1
        if self.pos >= n:
            verb = "ignoring" if self.table.kind is Kind.PCRE else "skipping"
            self.problem(f'no closing regexp delimiter "{chr(delim)}": {verb} this rule', start)
            return None
        source = text[start : self.pos]
        self.pos += 1
        flags = self.flags()
        return None if flags is None else Pattern(source, flags, negate, start + 1)

    def negation(self) -> bool:
        """The `!`s before a pattern (pcre: with blanks between them, as dict_pcre.c reads them)."""
        text, n = self.text, len(self.text)
        negate = False
        if self.table.kind is Kind.PCRE:
            while self.pos < n and (text[self.pos] == 0x21 or text[self.pos] in _SPACE):
                negate ^= text[self.pos] == 0x21
                self.pos += 1
            return negate
        while self.pos < n and text[self.pos] == 0x21:
            negate = not negate
            self.pos += 1
        self.skip_space()
        return negate

    def flags(self) -> str | None:
        """The flags after the closing delimiter, or None (with the problem) for an unknown one."""
        text, n = self.text, len(self.text)
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
        return text[flag_start : self.pos].decode("ascii")
