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
    max_sub = 0
    while i < n:
        c = text[i]
        if c != 0x24:
            buf.append(c)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == 0x24:
            buf.append(c)
            i += 2
            continue
        start = i
        if buf:
            parts.append(bytes(buf))
            buf.clear()
        i += 1
        if i < n and text[i] in (0x28, 0x7B):
            open_c = text[i]
            close_c = 0x29 if open_c == 0x28 else 0x7D
            level = 1
            i += 1
            j = i
            while level > 0:
                if j >= n:
                    shown = text.decode("utf-8", "replace")
                    reasons.append(f'truncated macro reference: "{shown}"')
                    raise ReplacementError(reasons, start if first_bad < 0 else first_bad)
                if text[j] == open_c:
                    level += 1
                if text[j] == close_c:
                    level -= 1
                j += 1
            name = text[i : j - 1]
            i = j
        else:
            j = i
            while j < n and _word(text[j]):
                j += 1
            name = text[i:j]
            i = j
        if not name:
            shown = text.decode("utf-8", "replace")
            reasons.append(f'empty macro name: "{shown}"')
            raise ReplacementError(reasons, start if first_bad < 0 else first_bad)
        shown_name = name.decode("utf-8", "replace")
        if not name.isdigit():
            reasons.append(f'non-numeric replacement index "{shown_name}"')
            first_bad = start if first_bad < 0 else first_bad
            continue
        number = int(name)
        if number < 1:
            reasons.append(f'out of range replacement index "{shown_name}"')
            first_bad = start if first_bad < 0 else first_bad
            continue
        max_sub = max(max_sub, number)
        parts.append(number)
    if buf:
        parts.append(bytes(buf))
    if reasons:
        raise ReplacementError(reasons, first_bad)
    return Replacement(tuple(parts), max_sub)
