"""dry-run on several CPUs: `mailwarden dry-run --jobs N` against `--jobs 1`, same run.

    .venv/bin/python bench/dryrun_bench.py [--messages 10000] [--rounds 3] [--jobs N]

A Maildir of `--messages` DKIM-signed 2 KB messages (dkim_bench.py's, each with an unsigned
X-Seq header of its own), verified against the static zone tests/data/dkim/test.zone, every
other stage at its default; --json output to a file, compared between the two sides (equal, in
order).
Messages/s are what dry-run reports (from the first message to the last; the rate over the
whole command, start-up included, is in the row's note); CPU is the command's (user + system,
workers included, start-up too), peak RSS the largest of its processes. Target (issue 15): N = the number of
CPUs, >= 1.8x on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _milters import Measured, Round, Row, standalone
from dkim_bench import DATA, message, signed

from mailwarden.adapters.dryrun_jobs import default_jobs


def corpus(path: Path, count: int) -> None:
    """A Maildir of `count` messages (an mbox works too, but its parsing is serial work in the
    process that hands the messages out: about 35 us a message here, against 15 for files)."""
    raw = signed(message(2048)).replace(b"\r\n", b"\n")
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True)
    for i in range(count):
        (path / "new" / f"{i:06d}.bench").write_bytes(b"X-Seq: %d\n" % i + raw)  # not signed


def dry_run(mbox: Path, jobs: int, out: Path, count: int) -> tuple[Round, float]:
    """One run: its own reported rate (from the first message to the last, as dry-run's summary
    line gives it), and the rate over the whole command, start-up included."""
    cmd = [str(Path(sys.executable).parent / "mailwarden"), "dry-run", "--json", "--jobs", str(jobs),
           "--zone", str(DATA / "test.zone"), "--client-ip", "192.0.2.10", "--mail-from", "alice@example.com",
           str(mbox)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reported = re.search(rb"([\d.]+) msg/s", proc.stderr)
    if proc.returncode != 0 or reported is None:
        raise SystemExit(f"dry-run --jobs {jobs} failed: {proc.stderr.decode()[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Round(float(reported[1]), math.nan, math.nan, cpu * 1000 / count), count / elapsed


def rows(args: argparse.Namespace) -> list[Row]:
    jobs = args.jobs or default_jobs()
    with tempfile.TemporaryDirectory(prefix="dryrunbench") as t:
        tmp = Path(t)
        mbox = tmp / "Maildir"
        corpus(mbox, args.messages)
        rounds: dict[int, list[Round]] = {jobs: [], 1: []}
        whole: dict[int, list[float]] = {jobs: [], 1: []}
        for _ in range(args.rounds):
            for n in rounds:
                one, overall = dry_run(mbox, n, tmp / f"out-{n}.json", args.messages)
                rounds[n].append(one)
                whole[n].append(overall)
        if (tmp / f"out-{jobs}.json").read_bytes() != (tmp / "out-1.json").read_bytes():
            raise SystemExit(f"dry-run --jobs {jobs} wrote other output than --jobs 1")
        # ru_maxrss of the children: the largest single process seen so far.
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    row = Row(f"dry-run --jobs {jobs}, {args.messages:,} signed 2 KB messages, DKIM verify (static zone)",
              [Measured(f"--jobs {jobs}", rounds[jobs], rss), Measured("--jobs 1", rounds[1], rss)],
              "bench/dryrun_bench.py", min_ratio=1.8 if jobs == 2 else None,
              note=f"messages/s as dry-run reports them (first message to last); over the whole command, "
                   f"start-up (imports, rule packs, keys) included: {max(whole[jobs]):.0f} against "
                   f"{max(whole[1]):.0f}, {max(whole[jobs]) / max(whole[1]):.2f}x. Peak RSS: the largest "
                   f"process of either side")
    row.print()
    return [row]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0, help="default: the number of CPUs")
    return ap


if __name__ == "__main__":
    standalone(parser, rows)
