"""mailwarden serve (embedded defaults, DNS from an empty static zone) against a do-nothing
pymilter milter, same run, same load.

    .venv/bin/python bench/milter_overhead.py [--messages 3000] [--concurrency 4]

Prints messages/s for each and the ratio; both driven by ../shared/tools/milterload.py over unix
sockets on this machine.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
