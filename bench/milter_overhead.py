"""mailwarden serve (embedded defaults, DNS from an empty static zone) against a do-nothing
pymilter milter, same run, same load.

    .venv/bin/python bench/milter_overhead.py [--messages 3000] [--concurrency 4]
    .venv/bin/python bench/milter_overhead.py --reports   # DMARC report recording on vs off

Prints messages/s for each and the ratio; both driven by ../shared/tools/milterload.py over unix
sockets on this machine. With --reports: two mailwarden serve instances on inbound mail whose From
domain publishes DMARC (every message is one recorded row), one recording into SQLite, one not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _milters import ROOT, milterload, start, stop


def load(sock: Path, args: argparse.Namespace, extra: list[str]) -> float:
    return float(str(milterload(sock, args.messages, args.concurrency, extra)["msgs_per_s"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reports", action="store_true", help="recording on vs off instead")
    args = parser.parse_args()
    if args.reports:
        reports_overhead(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        ref_sock, mw_sock = Path(tmp) / "ref.sock", Path(tmp) / "mw.sock"
        ref = start([sys.executable, str(ROOT / "bench" / "trivial_milter.py"), f"unix:{ref_sock}"], ref_sock,
                    "trivial milter")
        # An empty static zone: every lookup is NXDOMAIN at once, so no network is timed.
        zone = Path(tmp) / "empty.zone"
        zone.write_text("")
        mw = start([str(Path(sys.executable).parent / "mailwarden"), "serve", "--socket", f"unix:{mw_sock}",
                    "--zone", str(zone)], mw_sock, "mailwarden serve")
        try:
            for direction, extra in (("inbound", []), ("outbound", ["--auth", "user1"])):
                # Interleave the rounds so drift on a noisy machine hits both alike.
                ref_rates, mw_rates = [], []
                for _ in range(args.rounds):
                    ref_rates.append(load(ref_sock, args, extra))
                    mw_rates.append(load(mw_sock, args, extra))
                r, m = max(ref_rates), max(mw_rates)
                print(f"{direction:8s} c={args.concurrency} n={args.messages}: "
                      f"trivial pymilter {r:8.0f} msg/s, mailwarden {m:8.0f} msg/s, ratio {m / r:.2f}")
        finally:
            stop(mw)
            stop(ref)


# The load's sender domain publishes SPF for the load's client and DMARC: each message is recorded.
REPORTS_ZONE = """$TTL 300
example.com.        IN TXT "v=spf1 ip4:192.0.2.10 -all"
_dmarc.example.com. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the workers), from /proc."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            pids += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
    return total


def reports_overhead(args: argparse.Namespace) -> None:
    extra = ["--client-addr", "192.0.2.10"]
    with tempfile.TemporaryDirectory() as tmp:
        zone = Path(tmp) / "reports.zone"
        zone.write_text(REPORTS_ZONE)
        procs, socks = [], {}
        for name, store in (("off", ""), ("on", f"sqlite:///{tmp}/reports.db")):
            config = Path(tmp) / f"{name}.toml"
            config.write_text(f'[reports]\nstore = "{store}"\n')
            socks[name] = Path(tmp) / f"{name}.sock"
            # --user root: the workers must be able to write the store in this private directory
            procs.append(start([str(Path(sys.executable).parent / "mailwarden"), "serve", "--socket",
                                f"unix:{socks[name]}", "--config", str(config), "--zone", str(zone),
                                "--user", "root"],
                               socks[name], f"mailwarden serve (recording {name})"))
        try:
            rates: dict[str, list[float]] = {"off": [], "on": []}
            cpu: dict[str, float] = {"off": 0.0, "on": 0.0}
            for _ in range(args.rounds):
                for name, proc in zip(("off", "on"), procs, strict=True):
                    before = cpu_seconds(proc.pid)
                    rates[name].append(load(socks[name], args, extra))
                    cpu[name] += cpu_seconds(proc.pid) - before
            off, on = max(rates["off"]), max(rates["on"])
            print(f"inbound with DMARC c={args.concurrency} n={args.messages}: recording off {off:8.0f} "
                  f"msg/s, on {on:8.0f} msg/s, ratio {on / off:.3f} (rounds: off {rates['off']}, "
                  f"on {rates['on']})")
            # CPU time per message is what recording adds; unlike msg/s it hardly depends on
            # what else the machine is doing.
            per = {k: v / (args.rounds * args.messages) * 1e6 for k, v in cpu.items()}
            print(f"CPU per message: recording off {per['off']:.0f} us, on {per['on']:.0f} us, "
                  f"+{(per['on'] / per['off'] - 1) * 100:.1f}%")
        finally:
            for proc in procs:
                stop(proc)
        import sqlite3

        db = sqlite3.connect(Path(tmp) / "reports.db")
        rows = db.execute("SELECT count(*) FROM dmarc_rows").fetchone()[0]
        print(f"rows recorded: {rows} of {args.rounds * args.messages} messages")


if __name__ == "__main__":
    main()
