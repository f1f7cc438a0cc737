"""Result text with `$n`, `${n}`, `$(n)` and `$$`, parsed the way Postfix's mac_parse() does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class ReplacementError(Exception):
    def __init__(self, reasons: list[str], offset: int) -> None:
        self.reasons = reasons
        self.offset = offset
        super().__init__("; ".join(reasons))


@dataclass(frozen=True, slots=True)
class Replacement:
    """Literal pieces (bytes) and group numbers (int), in order."""

    parts: tuple[bytes | int, ...]
    max_sub: int

    @property
    def literal(self) -> bytes | None:
        """The whole result when it has no $number, so a match needs no expansion."""
        if self.max_sub:
            return None
        return b"".join(p for p in self.parts if isinstance(p, bytes))

    def expand(self, group: Callable[[int], bytes | None]) -> bytes:
        out = []
        for part in self.parts:
            if isinstance(part, int):
                out.append(group(part) or b"")
            else:
                out.append(part)
        return b"".join(out)


def _word(c: int) -> bool:
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95


def prescan(text: bytes) -> Replacement:
    """Parse `text`; raise ReplacementError with Postfix's warnings when the rule must be skipped."""
    parts: list[bytes | int] = []
    reasons: list[str] = []
    first_bad = -1
    buf = bytearray()
    i, n = 0, len(text)
    while i < n:
        if text[i] != 0x24 or text[i + 1 : i + 2] == b"$":
            buf.append(text[i])
            i += 2 if text[i] == 0x24 else 1
            continue
        start = i
        if buf:
            parts.append(bytes(buf))
            buf.clear()
        name, i = _macro_name(text, i + 1)
        if name is None or not name:
            shown = text.decode("utf-8", "replace")
            what = "truncated macro reference" if name is None else "empty macro name"
            reasons.append(f'{what}: "{shown}"')
            raise ReplacementError(reasons, start if first_bad < 0 else first_bad)
        shown_name = name.decode("utf-8", "replace")
        if not name.isdigit() or int(name) < 1:
            kind = "non-numeric" if not name.isdigit() else "out of range"
            reasons.append(f'{kind} replacement index "{shown_name}"')
            first_bad = start if first_bad < 0 else first_bad
            continue
        parts.append(int(name))
    if buf:
        parts.append(bytes(buf))
    if reasons:
        raise ReplacementError(reasons, first_bad)
    return Replacement(tuple(parts), max((p for p in parts if isinstance(p, int)), default=0))


def _macro_name(text: bytes, i: int) -> tuple[bytes | None, int]:
    """The name after a `$` at text[i - 1] ($name, ${name} or $(name)) and the offset after it;
    None if a bracket is never closed."""
    n = len(text)
    if i < n and text[i] in (0x28, 0x7B):
        open_c = text[i]
        close_c = 0x29 if open_c == 0x28 else 0x7D
        level = 1
        j = i + 1
        while level > 0:
            if j >= n:
                return None, n
            level += (text[j] == open_c) - (text[j] == close_c)
            j += 1
        return text[i + 1 : j - 1], j
    j = i
    while j < n and _word(text[j]):
        j += 1
    return text[i:j], j
