"""Rule packs: `rules/<class>/NN-name.pcre|.regexp`, loaded in lexical order per class."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.rules.actions import load_warnings
from mailwarden.rules.matcher import Matcher, compile_pattern
from mailwarden.rules.table import Kind, ParsedTable, Problem, kind_for, parse_table

CLASSES = (
    "header_checks",
    "mime_header_checks",
    "nested_header_checks",
    "body_checks",
    "outbound_header_checks",
)


def load_table(path: str | Path, kind: Kind | None = None) -> ParsedTable:
    """Parse and compile one table; an unreadable file is one problem at line 0."""
    name = str(path)
    kind = kind or kind_for(name) or Kind.PCRE
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        table = ParsedTable(name, kind)
        table.problems.append(Problem(name, 0, 0, f"cannot read: {exc.strerror}"))
        return table
    table = parse_table(name, data, kind, compile_pattern)
    for rule in table.rules:
        for pattern, code in ((rule.pattern, rule.code), (rule.second, rule.code2)):
            if pattern is None or code is None:
                continue
            for offset, text in code.warnings:
                table.problems.append(Problem(name, rule.line, pattern.column + offset, text, skipped=False))
        literal = rule.replacement.literal if rule.replacement is not None else None
        warning = load_warnings(literal) if literal is not None else None
        if warning is not None:
            table.problems.append(Problem(name, rule.line, 1, warning, skipped=False))
    return table


def pack_files(dirs: Iterable[Path], klass: str) -> list[Path]:
    """Every table of one class, directory by directory, each directory in lexical order."""
    found: list[Path] = []
    for base in dirs:
        folder = base / klass
        if not folder.is_dir():
            continue
        names = sorted(
            e.name
            for e in os.scandir(folder)
            if e.is_file() and kind_for(e.name) and not e.name.startswith(".")
        )
        found.extend(folder / n for n in names)
    return found


@dataclass
class RuleSet:
    """Every class's matcher, compiled completely before anyone uses it; immutable after."""

    matchers: dict[str, Matcher]
    tables: dict[str, list[ParsedTable]]
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def problems(self) -> list[Problem]:
        return [p for tables in self.tables.values() for t in tables for p in t.problems]

    def matcher(self, klass: str) -> Matcher:
        """The class's matcher; mime and nested checks default to header_checks, as in Postfix."""
        m = self.matchers.get(klass)
        if m is not None and len(m):
            return m
        if klass in ("mime_header_checks", "nested_header_checks"):
            return self.matchers["header_checks"]
        return self.matchers[klass]

    def __len__(self) -> int:
        return sum(len(m) for m in self.matchers.values())


def load_rules(dirs: Sequence[Path], timeout: float = 0.1) -> RuleSet:
    tables: dict[str, list[ParsedTable]] = {}
    matchers: dict[str, Matcher] = {}
    stamps: dict[str, tuple[int, int]] = {}
    for klass in CLASSES:
        files = pack_files(dirs, klass)
        for f in files:
            stamps[str(f)] = _stamp(f)
        tables[klass] = [load_table(f) for f in files]
        matchers[klass] = Matcher(tables[klass], timeout)
    return RuleSet(matchers, tables, stamps)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def current_stamps(dirs: Sequence[Path]) -> dict[str, tuple[int, int]]:
    return {str(f): _stamp(f) for klass in CLASSES for f in pack_files(dirs, klass)}
