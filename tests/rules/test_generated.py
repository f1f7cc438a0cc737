"""Generated tables and headers against postmap: random patterns from the syntax pieces, and a
large table where many rules match one header, so the prefilter must keep first-match order."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from tests.rules.test_postmap_diff import POSTMAP, POSTMAP_CMD

from mailwarden.rules.cli import query
from mailwarden.rules.loader import load_table

pytestmark = pytest.mark.skipif(not Path(POSTMAP).exists(), reason="postmap (postfix) not installed")

ATOMS_COMMON = [
    "a",
    "b",
    "X",
    "-",
    ":",
    " ",
    ".",
    "[ab]",
    "[^a]",
    "[[:alpha:]]",
    "[[:digit:]]",
    "\\.",
    "o",
    "[]a]",
    "[a-c]",
    "a|b",
    "\\$",
    "\\w",
    "\\s",
    "\\b",
]
ATOMS_PCRE = [*ATOMS_COMMON, "\\d", "(?:ab|c)", "(?=b)", "\\n", "\\S", "(?<=a)", "\\x41", "[\\d.]", "\\Z"]
ATOMS_POSIX = [*ATOMS_COMMON, "\\<", "\\>", "\\W", "[\\]", "\\d"]
QUANT_PCRE = ["", "", "", "*", "+", "?", "{1,2}", "*?", "+?"]
QUANT_POSIX = ["", "", "", "*", "+", "?", "{1,2}"]
FLAGS_PCRE = ["", "", "i", "m", "s", "x", "E", "U", "A", "ms", "im"]
FLAGS_REGEXP = ["", "", "i", "m", "im", "x", "xm"]
HEADERS = [
    b"Subject: ab ba aab",
    b"X-Ab: a\n\tb",
    b"X-ab: bb:aa",
    b"Xa: 12.ab",
    b"X-A-B: o o o",
    b"subject: X-ab-",
    b"X-Empty:",
    b"X-N: a\n b\n  ab",
]


def _pattern(rng: random.Random, pcre: bool) -> str:
    atoms = ATOMS_PCRE if pcre else ATOMS_POSIX
    quants = QUANT_PCRE if pcre else QUANT_POSIX
    parts = ["^"] if rng.random() < 0.5 else []
    for _ in range(rng.randint(1, 5)):
        atom = rng.choice(atoms)
        if rng.random() < 0.2:
            atom = f"({atom})"
        parts.append(atom + rng.choice(quants))
    if rng.random() < 0.2:
        parts.append("$")
    return "".join(parts)


def _table(rng: random.Random, pcre: bool, size: int) -> bytes:
    lines = []
    for i in range(size):
        pat = _pattern(rng, pcre)
        groups = pat.count("(") - pat.count("(?")
        sub = f" [${rng.randint(1, groups)}]" if groups and rng.random() < 0.6 else ""
        neg = "!" if rng.random() < 0.1 and not sub else ""
        flags = rng.choice(FLAGS_PCRE if pcre else FLAGS_REGEXP)
        lines.append(f"{neg}/{pat}/{flags} INFO r{i}{sub}")
    return ("\n".join(lines) + "\n").encode()


def _postmap(kind: str, table: Path, keys: bytes) -> tuple[bytes, int]:
    cmd = [*POSTMAP_CMD, "-hq", "-", f"{kind}:{table}"]
    p = subprocess.run(cmd, input=keys, capture_output=True, timeout=60)
    return p.stdout, p.returncode


@pytest.mark.parametrize("kind", ["pcre", "regexp"])
@pytest.mark.parametrize("seed", range(6))
def test_random_rules_one_by_one(tmp_path: Path, kind: str, seed: int) -> None:
    """Each rule alone in its table (so a later rule is never hidden); refused rules are skipped."""
    rng = random.Random(seed * 7919 + (kind == "pcre"))
    message = b"\n".join(HEADERS) + b"\n\n"
    table = tmp_path / f"t.{kind}"
    compared = 0
    for line in _table(rng, kind == "pcre", 25).splitlines():
        table.write_bytes(line + b"\n")
        parsed = load_table(table)
        if any("not supported by mailwarden" in p.reason for p in parsed.problems):
            continue  # a documented refusal (rules/README.md), checked in test_packs_and_refusals
        assert query([parsed], message, True, False) == _postmap(kind, table, message), line
        compared += 1
    assert compared >= 8


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
