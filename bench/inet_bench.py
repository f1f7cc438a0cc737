"""Postfix -> mailwarden over TCP on loopback (`inet:`) against the same over a unix socket.

    .venv/bin/python bench/inet_bench.py [--messages 300] [--rounds 3]

A private Postfix (tests/support/postfix.py, needs root) with two smtpd listeners: one whose milter
is mailwarden on inet:127.0.0.1:PORT, one whose milter is a second mailwarden on a unix socket,
both with the same config (embedded defaults, an empty static zone). Messages go one SMTP
session at a time, each presented as a remote client (XCLIENT), so each gets an
Authentication-Results header: the end-of-message reply is an insert-header packet and then the
accept, two small writes. A milter socket with Nagle on holds the second until Postfix ACKs the
first, and Postfix's cleanup delays that ACK by up to 40 ms: a stall per message that shows as
a rate far below the unix socket's. Target (issue 15): no stall, ratio about 1.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _milters import ROOT, Measured, Milter, Round, Row, standalone, wait_socket, wait_tcp
from dkim_bench import message

sys.path.insert(0, str(ROOT))
from tests.support.postfix import REMOTE_CLIENT, PostfixInstance, free_port, submit


def serve(tmp: Path, name: str, spec: str) -> subprocess.Popen[bytes]:
    zone = tmp / "empty.zone"
    zone.write_text("")
    conf = tmp / "mw.toml"
    conf.write_text('[milter]\nlog_level = "warning"\n')
    cmd = [str(Path(sys.executable).parent / "mailwarden"), "serve", "--socket", spec, "--config", str(conf),
           "--zone", str(zone), "--user", "root"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def send(port: int, raw: bytes, count: int, milter: Milter) -> Round:
    latencies = []
    cpu0 = milter.cpu_s()
    t0 = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        res = submit(port, raw, "alice@example.com", ["bob@rcpt.test"], client_addr=REMOTE_CLIENT)
        if not res.ok:
            raise SystemExit(f"Postfix refused a message: {res}")
        latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - t0
    cpu = milter.cpu_s() - cpu0
    q = statistics.quantiles(latencies, n=100)
    return Round(count / elapsed, statistics.median(latencies), q[98], cpu * 1000 / count)


def rows(args: argparse.Namespace) -> list[Row]:
    if os.geteuid() != 0 or not Path("/usr/sbin/postfix").exists():
        print("inet_bench.py needs root and Postfix: skipped")
        return []
    count = min(args.messages, 300)
    raw = message(2048)
    port = free_port()
    inst = PostfixInstance(milter=f"inet:127.0.0.1:{port}")
    milters: list[Milter] = []
    with tempfile.TemporaryDirectory(prefix="inetbench") as t:
        tmp = Path(t)
        try:
            tcp = serve(tmp, "tcp", f"inet:{port}@127.0.0.1")
            milters.append(tcp_m := Milter("mailwarden inet:", tcp, f"inet:{port}@127.0.0.1"))
            wait_tcp(port, tcp, "mailwarden on inet:")
            unix = serve(tmp, "unix", f"unix:{inst.alt_milter_path}")
            milters.append(unix_m := Milter("mailwarden unix:", unix, f"unix:{inst.alt_milter_path}"))
            wait_socket(inst.alt_milter_path, unix, "mailwarden on unix:")
            inst.start()
            sides = [(inst.inbound, tcp_m), (inst.alt, unix_m)]
            for p, m in sides:  # warm-up
                send(p, raw, 20, m)
            rounds: list[list[Round]] = [[], []]
            for _ in range(args.rounds):
                for i, (p, m) in enumerate(sides):
                    rounds[i].append(send(p, raw, count, m))
            measured = [Measured(m.name, r, m.peak_rss_mb()) for (_, m), r in zip(sides, rounds, strict=True)]
        finally:
            for m in milters:
                m.stop()
            inst.close()
    row = Row(f"Postfix -> mailwarden, TCP vs unix socket, 2 KB, one session at a time ({count} per round)",
              measured, "bench/inet_bench.py", min_ratio=0.8,
              note="latency: the whole SMTP session as the client sees it")
    row.print()
    if math.isnan(row.ratio):
        return []
    return [row]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300, help="messages per round (at most 300)")
    ap.add_argument("--rounds", type=int, default=3)
    return ap


if __name__ == "__main__":
    standalone(parser, rows)
