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

The parent process's own CPU is measured apart (with N jobs on N CPUs it is taken from the jobs):
dry-run runs under a wrapper that prints the process's getrusage(RUSAGE_SELF) at exit, and a run
over an empty Maildir, in each round, gives the start-up's share to take off.
"""

from __future__ import annotations

import argparse
import math
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


# `mailwarden` with its own CPU (not its children's) on stderr at exit.
PARENT_CPU = """import resource, sys
from mailwarden.cli import main
try:
    status = main(sys.argv[1:])
finally:
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(f"parent CPU {use.ru_utime + use.ru_stime:.4f} s", file=sys.stderr)
sys.exit(status)
"""


@dataclass
class Run:
    round: Round
    overall: float  # messages/s over the whole command, start-up included
    parent_cpu: float  # seconds, the parent process alone


def command(mbox: Path, jobs: int) -> list[str]:
    return [sys.executable, "-c", PARENT_CPU, "dry-run", "--json", "--jobs", str(jobs),
            "--zone", str(DATA / "test.zone"), "--client-ip", "192.0.2.10",
            "--mail-from", "alice@example.com", str(mbox)]


def dry_run(mbox: Path, jobs: int, out: Path, count: int) -> Run:
    """One run: its own reported rate (from the first message to the last, as dry-run's summary
    line gives it), the rate over the whole command, start-up included, and the parent's CPU."""
    cmd = command(mbox, jobs)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reported = re.search(rb"([\d.]+) msg/s", proc.stderr)
    parent = re.search(rb"parent CPU ([\d.]+) s", proc.stderr)
    if proc.returncode != 0 or reported is None or parent is None:
        raise SystemExit(f"dry-run --jobs {jobs} failed: {proc.stderr.decode()[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rate = Round(float(reported[1]), math.nan, math.nan, cpu * 1000 / max(count, 1))
    return Run(rate, count / elapsed, float(parent[1]))


def ceiling(shares: list[Path]) -> float:
    """What N CPUs give at best: N independent `--jobs 1` commands at once, one on each share of
    the messages (nothing handed out, nothing gathered); the sum of their reported rates."""
    procs = [subprocess.Popen(command(share, 1), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for share in shares]
    total = 0.0
    for proc in procs:
        _, err = proc.communicate()
        reported = re.search(rb"([\d.]+) msg/s", err)
        if proc.returncode != 0 or reported is None:
            raise SystemExit(f"dry-run --jobs 1 on a share failed: {err.decode()[-1500:]}")
        total += float(reported[1])
    return total


def machine_load() -> str:
    """The load average, and whether the scheduler shares the CPUs per session (autogroup): then
    the processes of one command together get one session's share, however many jobs it runs, and
    a `nice 19` process in another session still takes a full share of its own."""
    load = Path("/proc/loadavg").read_text().split()[0]
    try:
        autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        autogroup = False
    return f"load average {load}" + (", sched_autogroup on" if autogroup else "")


def rows(args: argparse.Namespace) -> list[Row]:
    jobs = args.jobs or default_jobs()
    load = machine_load()
    with tempfile.TemporaryDirectory(prefix="dryrunbench") as t:
        tmp = Path(t)
        mbox, empty = tmp / "Maildir", tmp / "Empty"
        corpus(mbox, args.messages)
        corpus(empty, 0)
        shares = [tmp / f"Share-{i}" for i in range(jobs)]
        for share in shares:
            corpus(share, args.messages // jobs)
        runs: dict[int, list[Run]] = {jobs: [], 1: []}
        startup: list[float] = []
        best: list[float] = []
        for _ in range(args.rounds):
            startup.append(dry_run(empty, 1, tmp / "out-empty.json", 0).parent_cpu)
            for n in runs:
                runs[n].append(dry_run(mbox, n, tmp / f"out-{n}.json", args.messages))
            best.append(ceiling(shares))
        if (tmp / f"out-{jobs}.json").read_bytes() != (tmp / "out-1.json").read_bytes():
            raise SystemExit(f"dry-run --jobs {jobs} wrote other output than --jobs 1")
        # ru_maxrss of the children: the largest single process seen so far.
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    whole = {n: max(run.overall for run in runs[n]) for n in runs}
    start = statistics.median(startup)
    # The parent's CPU per message, start-up taken off, and its share of the command's CPU.
    parent_us = {n: statistics.median((r.parent_cpu - start) * 1e6 / args.messages for r in runs[n])
                 for n in runs}
    share = statistics.median((r.parent_cpu - start) / (r.round.cpu_ms * args.messages / 1000 - start)
                              for r in runs[jobs])
    row = Row(f"dry-run --jobs {jobs}, {args.messages:,} signed 2 KB messages, DKIM verify (static zone)",
              [Measured(f"--jobs {jobs}", [r.round for r in runs[jobs]], rss),
               Measured("--jobs 1", [r.round for r in runs[1]], rss)],
              "bench/dryrun_bench.py", min_ratio=1.8 if jobs == 2 else None,
              note=f"messages/s as dry-run reports them (first message to last); over the whole command, "
                   f"start-up (imports, rule packs, keys) included: {whole[jobs]:.0f} against "
                   f"{whole[1]:.0f}, {whole[jobs] / whole[1]:.2f}x. The parent process's CPU, start-up "
                   f"({start:.2f} s) taken off: {parent_us[jobs]:.1f} us/msg with --jobs {jobs} "
                   f"({share:.1%} of the command's), {parent_us[1]:.0f} with --jobs 1 (all the work). "
                   f"The ceiling, {jobs} independent --jobs 1 commands at once on {jobs} shares of the "
                   f"messages: {max(best):.0f}/s, {max(best) / rows_best(runs[1]):.2f}x; --jobs {jobs} is "
                   f"{rows_best(runs[jobs]) / max(best):.0%} of it. "
                   f"Peak RSS: the largest process of either side. At the start: {load}")
    row.print()
    print(f"  {row.note}", flush=True)
    return [row]


def rows_best(runs: list[Run]) -> float:
    return max(run.round.rate for run in runs)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0, help="default: the number of CPUs")
    return ap


if __name__ == "__main__":
    standalone(parser, rows)
