"""Where mailwarden's time goes per message: py-spy (GIL view) on `mailwarden serve` under load.

    .venv/bin/python bench/profile_milter.py [--messages 3000] [--concurrency 4] [--config inbound|bare]
                                             [--reused] [--top 25] [--connection-cost]

The inbound configuration of pipeline_bench.py (defaults, a 1,000-rule header_checks pack, DNS
from a loopback server) or every stage off (bare), one worker, a new connection per message
(--reused: c connections carrying every message). py-spy samples only while a thread holds the
GIL (--gil), so the shares are of Python time, the part one worker cannot overlap. Prints the
share of each libmilter callback (the adapter method a stack passes through), the functions
with the most samples of their own, and the ones with the most samples including callees.
Needs py-spy (`pip install -e '.[bench]'`) and root (ptrace).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _milters import Side, interleaved, run_load
from dkim_bench import DATA, mailwarden, private_key
from pipeline_bench import (
    INBOUND,
    OUTBOUND,
    ZONE,
    CachedDns,
    config,
    inbound_message,
    outbound_message,
    reading_milter,
)
from rules_bench import make_table

from mailwarden.resolver.static import StaticZone

CALLBACKS = ("negotiate", "connect", "hello", "envfrom", "envrcpt", "header", "eoh", "body", "eom",
             "abort", "close")
FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+):(?P<line>\d+)\)$")


def summarize(collapsed: Path, top: int) -> None:
    per_callback: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [FRAME.match(f.strip()) for f in stack.split(";")]
        names = [f"{m['func']} ({Path(m['file']).name})" for m in frames if m]
        callback = next((m["func"].rpartition(".")[2] for m in frames if m
                         and m["file"].endswith("adapters/pymilter.py")
                         and m["func"].rpartition(".")[2] in CALLBACKS), None)
        if callback is None and any(m and "Milter/__init__" in m["file"] for m in frames):
            callback = "pymilter's own (negotiate/connect/close shims)"
        elif callback is None and names:
            callback = "the callback lambdas (adapters/pymilter.py)"
        elif callback is None:
            callback = "no Python frame: C code holding the GIL (pymilter's context and thread state)"
        per_callback[callback] += n
        if names:
            own[names[-1]] += n
            for name in set(names):
                inclusive[name] += n
    print(f"{total} samples with the GIL held")
    print("\nper callback:")
    for name, n in per_callback.most_common():
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ntop {top} by own samples:")
    for name, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ntop {top} including callees:")
    for name, n in inclusive.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {name}")


def connection_cost(tmp: Path, nameserver: str, key: Path, messages: int, eml: Path) -> None:
    """CPU per message with a connection per message and with reused ones, for the reading
    milter and mailwarden with every stage off, one and two workers: the difference is what a
    connection costs (libmilter's thread, pymilter's context, our objects, balancing)."""
    bare = config(key, nameserver, None, stages=False)
    milters = [reading_milter(tmp, 1),
               mailwarden(tmp, bare.replace("[milter]\n", "[milter]\nworkers = 1\n", 1), "bare1"),
               mailwarden(tmp, bare.replace("[milter]\n", "[milter]\nworkers = 2\n", 1), "bare2")]
    labels = ["reading pymilter milter, 1 process", "mailwarden, stages off, 1 worker",
              "mailwarden, stages off, 2 workers (balancing)"]
    try:
        base = [a for a in INBOUND if a != "--per-message-connections"]
        new = [*base, "--per-message-connections"]
        sides = [Side(f"{label}: {mode}", [m], new if mode == "new" else base)
                 for label, m in zip(labels, milters, strict=True) for mode in ("new", "reused")]
        measured = interleaved(sides, messages, 4, 3, ["--eml", str(eml)])
        for i, label in enumerate(labels):
            new, reused = measured[2 * i].mid("cpu_ms"), measured[2 * i + 1].mid("cpu_ms")
            print(f"{label}: {new * 1000:.0f} us/msg with a connection each, {reused * 1000:.0f} reused: "
                  f"{(new - reused) * 1000:.0f} us per connection")
    finally:
        for m in milters:
            m.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--config", choices=["inbound", "bare"], default="inbound")
    ap.add_argument("--reused", action="store_true", help="reuse connections (default: one per message)")
    ap.add_argument("--outbound", action="store_true",
                    help="outbound mail (SASL-authenticated, signed with RSA and Ed25519) instead of inbound")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--output", type=Path, help="keep py-spy's collapsed stacks here")
    ap.add_argument("--connection-cost", action="store_true",
                    help="no profile: CPU per connection of the reading milter and of mailwarden")
    args = ap.parse_args()
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory(prefix="profile") as t:
        tmp = Path(t)
        (tmp / "bench.zone").write_text((DATA / "test.zone").read_text() + ZONE)
        dns = CachedDns(StaticZone.from_files([tmp / "bench.zone"]))
        pack = tmp / "pack"
        (pack / "header_checks").mkdir(parents=True)
        (pack / "header_checks" / "60-bench.pcre").write_bytes(make_table(1000, random.Random(15)))
        key = private_key(tmp)
        (tmp / "ed.key").write_bytes((DATA / "ed.key").read_bytes())
        (tmp / "ed.key").chmod(0o600)
        eml = tmp / "in.eml"
        eml.write_bytes(outbound_message(4096) if args.outbound else inbound_message(4096))
        if args.connection_cost:
            connection_cost(tmp, dns.address, key, args.messages, eml)
            dns.close()
            return 0
        text = config(key, dns.address, pack, stages=args.config == "inbound")
        text = text.replace("[milter]\n", "[milter]\nworkers = 1\n", 1)
        mw = mailwarden(tmp, text)
        extra = [a for a in (OUTBOUND if args.outbound else INBOUND)
                 if not (args.reused and a == "--per-message-connections")]
        side = Side("mailwarden", [mw], extra)
        out = args.output or tmp / "stacks.txt"
        try:
            run_load(side, 200, args.concurrency, ["--eml", str(eml)])  # warm-up
            worker = max(mw.pids()[1:] or mw.pids())
            spy_proc = subprocess.Popen([str(spy), "record", "--pid", str(worker), "--gil",
                                         "--rate", "500", "--format", "raw", "--output", str(out),
                                         "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
            result = run_load(side, args.messages, args.concurrency, ["--eml", str(eml)])
            spy_proc.send_signal(2)
            spy_proc.wait(30)
            print(f"{result.rate:.0f} msg/s, CPU {result.cpu_ms:.3f} ms/msg (under py-spy)")
            summarize(out, args.top)
        finally:
            mw.stop()
            dns.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
