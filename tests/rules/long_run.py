"""The long differential run of issue 11, too slow for CI: `python -m tests.rules.long_run`.

Random tables from the whole grammar against postmap (N per kind), and random patterns against
glibc's regcomp()/regexec() and libpcre2 (M per engine), with seeds the CI runs do not use.
Differences are counted, never fatal; the summary (figures, then up to 20 examples of each kind of
difference) goes to stdout. Run it niced on a shared machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tests.rules import test_glibc_regex, test_pcre2
from tests.rules.differential import Difference, compare_random
from tests.rules.test_generated import compare_tables

from mailwarden.rules.table import Kind


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=50_000, help="random tables per kind (pcre, regexp)")
    parser.add_argument("--patterns", type=int, default=100_000, help="random patterns per engine")
    parser.add_argument("--seed", type=int, default=11_000)
    args = parser.parse_args()
    started = time.monotonic()

    def say(line: str) -> None:
        print(line, flush=True)  # section by section: a long run stopped early still reports

    def say_all(lines: Iterable[str]) -> None:
        for line in lines:
            say(line)

    for n, (name, kind, prepare) in enumerate(
        (
            ("glibc regexp patterns", Kind.REGEXP, test_glibc_regex.prepare),
            ("libpcre2 pcre patterns", Kind.PCRE, test_pcre2.prepare),
        )
    ):
        differences: list[Difference] = []
        seen = compare_random(kind, prepare, args.seed + n, args.patterns, differences)
        say(f"{name}: {dict(seen)}, differences: {len(differences)}")
        say_all(f"  {what}: {pattern!r} flags {flags!r}" for what, pattern, flags in differences[:20])
    for kind_name in ("pcre", "regexp"):
        table_differences: list[tuple[str, bytes, bytes]] = []
        with tempfile.TemporaryDirectory() as tmp:
            seen = compare_tables(
                Path(tmp), kind_name, args.seed + 2 + (kind_name == "regexp"), args.tables, table_differences
            )
        kinds = Counter(what.split(":")[0] for what, _, _ in table_differences)
        found = f"differences: {len(table_differences)} {dict(kinds)}"
        say(f"{kind_name} tables against postmap: {dict(seen)}, {found}")
        say_all(
            f"  {what}: table {table!r} message {message!r}"
            for what, table, message in table_differences[:20]
        )
    say(f"elapsed: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
