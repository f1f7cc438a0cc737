"""Random patterns run by a reference engine (glibc, libpcre2) and by mailwarden, compared.

Shared by test_glibc_regex.py and test_pcre2.py (seeded, in CI) and long_run.py (counted).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from tests.rules.gen import Generator

from mailwarden.rules.matcher import compile_pattern
from mailwarden.rules.table import CompileError, Kind, Pattern

Difference = tuple[str, bytes, str]
"""(what differs, pattern, flags)."""


class Reference(Protocol):
    error: int

    def search(self, text: bytes) -> list[tuple[int, int]] | None: ...


Prepare = Callable[[random.Random, bytes, str], tuple[Reference, int]]
"""(rng, pattern, flags) -> (the reference's compiled pattern, highest $n the rule uses)."""


def compare_random(
    kind: Kind, prepare: Prepare, seed: int, count: int, differences: list[Difference] | None = None
) -> Counter[str]:
    """`count` random patterns, each run on 8 random subjects by the reference and by mailwarden:
    compile errors, match or no match, and $1..$max_sub must agree. Refusals by mailwarden are
    counted. A difference fails an assertion, or is appended to `differences` (the long run)."""
    rng = random.Random(seed)
    gen = Generator(rng, pcre=kind is Kind.PCRE)
    seen: Counter[str] = Counter()

    def differ(what: str, pattern: bytes, flags: str) -> None:
        assert differences is not None, (what, pattern, flags)
        differences.append((what, pattern, flags))

    for _ in range(count):
        pattern, flags = gen.pattern(), gen.flags()
        ref, max_sub = prepare(rng, pattern, flags)
        try:
            code = compile_pattern(kind, Pattern(pattern, flags, False, 1), max_sub)
        except CompileError as exc:
            if not ref.error and "not supported by mailwarden" not in exc.reason:
                differ(f"refused: {exc.reason}", pattern, flags)
            seen["refused" if not ref.error else "both refuse"] += 1
            continue
        if ref.error:
            differ("the reference refuses it", pattern, flags)
            continue
        seen["compared"] += 1
        run = code.regex.match if code.anchored else code.regex.search
        for _ in range(8):
            subject = gen.subject()
            want = ref.search(subject)
            m = run(subject)
            if (m is not None) != (want is not None):
                differ(f"match on {subject!r}", pattern, flags)
                break
            if m is not None and want is not None:
                expected = [subject[a:b] if a >= 0 else b"" for a, b in want[1 : max_sub + 1]]
                if [m.group(k) or b"" for k in range(1, max_sub + 1)] != expected:
                    differ(f"$n on {subject!r}", pattern, flags)
                    break
    return seen
