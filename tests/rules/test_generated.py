"""Generated tables against postmap: random tables from the whole grammar, looked up by postmap and
by mailwarden with random messages, and a large table where many rules match one header, so the
prefilter must keep first-match order. MAILWARDEN_POSTMAP_TABLES sets how many tables per kind
(1000 in CI; the long run in the closing note of issue 11 used 50,000)."""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.rules.gen import Generator
from tests.rules.test_postmap_diff import POSTMAP, POSTMAP_CMD

from mailwarden.rules.cli import query
from mailwarden.rules.loader import load_table
from mailwarden.rules.table import ParsedTable

pytestmark = pytest.mark.skipif(not Path(POSTMAP).exists(), reason="postmap (postfix) not installed")


def _postmap(kind: str, table: Path, keys: bytes, mode: str = "h") -> tuple[bytes, int]:
    return _postmap_warnings(kind, table, keys, mode)[0]


LEADING = "logical line must not start with whitespace"


def _postmap_warnings(
    kind: str, table: Path, keys: bytes, mode: str
) -> tuple[tuple[bytes, int], set[int], int]:
    """What postmap prints and its exit status, the table lines it warns about, and how many
    logical lines it drops for leading whitespace (that warning names no line)."""
    cmd = [*POSTMAP_CMD, f"-{mode}q", "-", f"{kind}:{table}"]
    p = subprocess.run(cmd, input=keys, capture_output=True, timeout=60)
    lines = {int(m) for m in re.findall(rb", line (\d+): ", p.stderr)}
    return (p.stdout, p.returncode), lines, p.stderr.count(LEADING.encode())


# Problems only mailwarden reports: rules that cannot act in the milter, misleading escapes.
MAILWARDEN_ONLY = ("unknown command", "FILTER has no", "needs user@domain", "header text", "not an escape")


def without_refused(table: Path, content: bytes) -> tuple[ParsedTable, bytes, int]:
    """The table with every rule mailwarden refuses removed (Postfix would run them: they are
    counted, and listed in rules/README.md), written back so that postmap reads the same rules."""
    refused = 0
    while True:
        table.write_bytes(content)
        parsed = load_table(table)
        lines = {p.line for p in parsed.problems if "not supported by mailwarden" in p.reason}
        if not lines:
            return parsed, content, refused
        refused += len(lines)
        content = b"".join(
            line for n, line in enumerate(content.splitlines(keepends=True), 1) if n not in lines
        )


Difference = tuple[str, bytes, bytes]
"""(what differs, table, message)."""


def compare_tables(
    directory: Path, kind: str, seed: int, count: int, differences: list[Difference] | None = None
) -> Counter[str]:
    """`count` random tables of `kind`, each looked up with a random message by postmap and by us:
    the same output and exit status, and warnings about the same lines. A difference fails an
    assertion, or is appended to `differences` when given (the long run, tests/rules/long_run.py)."""
    rng = random.Random(seed)
    gen = Generator(rng, pcre=kind == "pcre")
    cases = [
        (gen.table(rng.randint(1, 10)), gen.message(12), "hb" if rng.random() < 0.1 else "h")
        for _ in range(count)
    ]

    def differ(what: str, content: bytes, message: bytes) -> None:
        assert differences is not None, (what, content, message)
        differences.append((what, content, message))

    def compare(index: int) -> Counter[str]:
        content, message, mode = cases[index]
        table = directory / f"{index}.{kind}"
        parsed, content, refused = without_refused(table, content)
        want, warned, leading = _postmap_warnings(kind, table, message, mode)
        got = query([parsed], message, True, "b" in mode)
        if got != want:
            differ("lookup", content, message)
        ours = {
            p.line for p in parsed.problems if not any(w in p.reason for w in (*MAILWARDEN_ONLY, LEADING))
        }
        if ours != warned or leading != sum(p.reason == LEADING for p in parsed.problems):
            differ(f"warned lines: postmap {sorted(warned)}, mailwarden {sorted(ours)}", content, message)
        return Counter(tables=1, rules=len(parsed.rules) + refused, matched=got[1] == 0, refused=refused)

    seen: Counter[str] = Counter()
    with ThreadPoolExecutor(4) as pool:  # postmap's start-up dominates: overlap it
        for result in pool.map(compare, range(count)):
            seen.update(result)
    return seen


TABLES = int(os.environ.get("MAILWARDEN_POSTMAP_TABLES", "1000"))


@pytest.mark.parametrize("kind", ["pcre", "regexp"])
def test_random_tables_against_postmap(tmp_path: Path, kind: str) -> None:
    """Random tables from the whole grammar (tests/rules/gen.py): a seeded 1000 per kind and run."""
    seen = compare_tables(tmp_path, kind, 1 if kind == "pcre" else 2, TABLES)
    assert seen["tables"] == TABLES
    assert seen["matched"] > TABLES // 2  # the tables do catch mail
    assert seen["refused"] < seen["rules"] // 20, seen  # 2% in the long run


@pytest.mark.parametrize("kind", ["pcre", "regexp"])
def test_large_table_keeps_first_match_order(tmp_path: Path, kind: str) -> None:
    rng = random.Random(42)
    lines = []
    for i in range(600):
        w = rng.choice(["alpha", "beta", "gamma", "delta"])
        shape = i % 4
        if shape == 0:
            lines.append(f"/^Subject:.*{w}/ INFO subject-{w}-{i}")
        elif shape == 1:
            lines.append(f"/{w}[0-9]+/ INFO anywhere-{w}-{i}")
        elif shape == 2:
            lines.append(f"!/{w}/ INFO not-{w}-{i}" if i % 40 == 2 else f"/^X-{w}:/ INFO x-{w}-{i}")
        else:
            lines.append(f"/^(To|From):.*{w}/ INFO addr-{w}-{i}")
    table = tmp_path / f"big.{kind}"
    table.write_bytes(("\n".join(lines) + "\n").encode())
    keys = [
        b"Subject: gamma delta",
        b"X-beta: beta7",
        b"To: alpha@x",
        b"From: delta3",
        b"X-Other: none",
        b"Subject: nothing",
        b"X-alpha: alpha beta gamma delta",
    ]
    message = b"\n".join(keys) + b"\n\n"
    got = query([load_table(table)], message, True, False)
    assert got == _postmap(kind, table, message)
    assert got[0].count(b"\n") == len(keys)
