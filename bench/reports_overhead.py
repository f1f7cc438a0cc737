"""DMARC report recording on against off: two mailwarden serve instances, same run, same load.

    .venv/bin/python bench/reports_overhead.py [--messages 3000] [--concurrency 4] [--rounds 3]

(Was `bench/milter_overhead.py --reports`; the rest of milter_overhead.py became the ceiling rows
of pipeline_bench.py.) Inbound mail whose From domain publishes DMARC, so every message is one
recorded row; one instance records into SQLite, one does not. Prints messages/s of each, CPU
per message (serve and its workers, from /proc: unlike msg/s it hardly depends on the machine's
other load) and the rows the store got. Not part of `make bench`'s table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _milters import Milter, milterload, start, stop


def load(sock: Path, args: argparse.Namespace, extra: list[str]) -> float:
    return float(str(milterload(sock, args.messages, args.concurrency, extra)["msgs_per_s"]))


# The load's sender domain publishes SPF for the load's client and DMARC: each message is recorded.
REPORTS_ZONE = """$TTL 300
example.com.        IN TXT "v=spf1 ip4:192.0.2.10 -all"
_dmarc.example.com. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
"""


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
                    tree = Milter(name, proc, f"unix:{socks[name]}")
                    before = tree.cpu_s()
                    rates[name].append(load(socks[name], args, extra))
                    cpu[name] += tree.cpu_s() - before
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    reports_overhead(parser.parse_args())


if __name__ == "__main__":
    main()
