"""Postfix -> milter over TCP on loopback (`inet:`), against a unix socket and the `quickack` route.

    .venv/bin/python bench/inet_bench.py [--messages 300] [--rounds 3]

Needs root and Postfix. The bench runs itself again inside a private network namespace (`unshare
--net`): its own loopback, whose routes it may change without touching the machine's. Two
private Postfixes (tests/support/postfix.py) send one SMTP session at a time, each presented as a
remote client (XCLIENT), so mailwarden verifies and adds an Authentication-Results header.

- Postfix -> mailwarden on inet:127.0.0.1, against the same over a unix socket (issue 15's
  target: no delayed-ACK stall, ratio about 1).
- Postfix -> OpenDKIM (verifying), which skips the DATA step (as pymilter's default does): on
  127.0.0.2, whose route back to the MTA (Postfix connects from 127.0.0.3 here) has `quickack 1`,
  against the same on 127.0.0.1 with the usual routes. That route on the milter's host is the
  workaround for milters that stall over TCP.

The stall: at DATA Postfix's smtpd hands the milter connection to cleanup. smtpd's last write
(the DATA macros) gets no reply when the milter skips DATA, and cleanup's first write (the
headers) then waits, with Nagle on in Postfix, for the milter host to ACK it: a delayed ACK,
about 40 ms per message. mailwarden answers DATA, whose reply carries the ACK at once
(adapters/pymilter._UNWANTED); bench/findings.md has the measurements.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import shutil
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

# Inside the namespace: Postfix reaches QUICK_MILTER from MTA_SOURCE, and only the milter's
# route back to MTA_SOURCE has quickack; every other socket keeps the usual routes.
QUICK_MILTER, MTA_SOURCE = "127.0.0.2", "127.0.0.3"
ROUTES = [
    ["ip", "link", "set", "lo", "up"],
    ["ip", "route", "add", "local", QUICK_MILTER, "dev", "lo", "table", "local", "scope", "host",
     "src", MTA_SOURCE],
    ["ip", "route", "add", "local", MTA_SOURCE, "dev", "lo", "table", "local", "scope", "host",
     "quickack", "1"],
]


def serve(tmp: Path, spec: str) -> subprocess.Popen[bytes]:
    zone = tmp / "empty.zone"
    zone.write_text("")
    conf = tmp / "mw.toml"
    conf.write_text('[milter]\nlog_level = "warning"\n')
    cmd = [str(Path(sys.executable).parent / "mailwarden"), "serve", "--socket", spec, "--config", str(conf),
           "--zone", str(zone), "--user", "root"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def opendkim(tmp: Path, spec: str) -> subprocess.Popen[bytes]:
    """OpenDKIM verifying, on `spec` (its inet:PORT@HOST form is libmilter's, as ours)."""
    name = spec.replace(":", "-").replace("@", "-")
    conf = tmp / f"opendkim-{name}.conf"
    conf.write_text(f"Mode v\nSocket {spec}\nBackground no\nSyslog no\nAuthservID bench.test\n"
                    f"InternalHosts 127.0.0.1\nPidFile {tmp / f'opendkim-{name}.pid'}\n")
    return subprocess.Popen(["opendkim", "-f", "-x", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


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
    """Run the measurement in a private network namespace; its rows, as it printed them."""
    if os.geteuid() != 0 or not Path("/usr/sbin/postfix").exists():
        print("inet_bench.py needs root and Postfix: skipped")
        return []
    if not (shutil.which("unshare") and shutil.which("ip") and shutil.which("opendkim")):
        print("inet_bench.py needs unshare (util-linux), ip (iproute2) and opendkim: skipped")
        return []
    if subprocess.run(["unshare", "--net", "true"], check=False).returncode != 0:
        print("inet_bench.py: no private network namespace here (unshare --net failed): skipped")
        return []
    with tempfile.TemporaryDirectory(prefix="inetbench") as t:
        out = Path(t) / "rows.pickle"
        cmd = ["unshare", "--net", "--", sys.executable, __file__, "--rows-to", str(out),
               "--messages", str(args.messages), "--rounds", str(args.rounds)]
        if subprocess.run(cmd, check=False).returncode != 0:
            raise SystemExit("inet_bench.py: the run in its network namespace failed")
        with out.open("rb") as f:
            measured: list[Row] = pickle.load(f)  # written just now by our own child
    return measured


def measure(args: argparse.Namespace) -> list[Row]:
    """Inside the namespace: the loopback and its routes, two Postfixes, four milters."""
    for cmd in ROUTES:
        subprocess.run(cmd, check=True)
    count = min(args.messages, 300)
    raw = message(2048)
    ports = [free_port() for _ in range(3)]
    mw_postfix = PostfixInstance(milter=f"inet:127.0.0.1:{ports[0]}")
    other_postfix = PostfixInstance(milter=f"inet:127.0.0.1:{ports[1]}")
    other_postfix.alt_milter = f"inet:{QUICK_MILTER}:{ports[2]}"
    other_postfix.postconf()  # rewrites the configuration with that milter; not started yet
    milters: list[Milter] = []
    with tempfile.TemporaryDirectory(prefix="inetbench") as t:
        tmp = Path(t)
        try:
            proc = serve(tmp, f"inet:{ports[0]}@127.0.0.1")
            milters.append(Milter("mailwarden inet:", proc, ""))
            wait_tcp(ports[0], proc, "mailwarden on inet:")
            proc = serve(tmp, f"unix:{mw_postfix.alt_milter_path}")
            milters.append(Milter("mailwarden unix:", proc, ""))
            wait_socket(mw_postfix.alt_milter_path, proc, "mailwarden on unix:")
            proc = opendkim(tmp, f"inet:{ports[1]}@127.0.0.1")
            milters.append(Milter("OpenDKIM, usual route", proc, ""))
            wait_tcp(ports[1], proc, "OpenDKIM")
            # Any address: wait_tcp looks on 127.0.0.1, and this namespace has no other interface.
            proc = opendkim(tmp, f"inet:{ports[2]}")
            milters.append(Milter("OpenDKIM, quickack route", proc, ""))
            wait_tcp(ports[2], proc, "OpenDKIM")
            mw_postfix.start()
            other_postfix.start()
            sides = [(mw_postfix.inbound, milters[0]), (mw_postfix.alt, milters[1]),
                     (other_postfix.alt, milters[3]), (other_postfix.inbound, milters[2])]
            for port, m in sides:  # warm-up
                send(port, raw, 20, m)
                m.reset_peak()
            rounds: list[list[Round]] = [[] for _ in sides]
            for _ in range(args.rounds):
                for i, (port, m) in enumerate(sides):
                    rounds[i].append(send(port, raw, count, m))
            measured = [Measured(m.name, r, m.peak_rss_mb()) for (_, m), r in zip(sides, rounds, strict=True)]
        finally:
            for m in milters:
                m.stop()
            mw_postfix.close()
            other_postfix.close()
    out = [
        Row(f"Postfix -> mailwarden, TCP vs unix socket, 2 KB, one session at a time ({count} per round)",
            measured[:2], "bench/inet_bench.py", min_ratio=0.8,
            note="latency: the whole SMTP session as the client sees it"),
        Row(f"Postfix -> OpenDKIM (verify; it skips DATA) over TCP: the milter host's route to the MTA "
            f"with `quickack 1` vs without ({count} per round)",
            measured[2:], "bench/inet_bench.py",
            note="the route is made in a private network namespace; see bench/findings.md"),
    ]
    for row in out:
        row.print()
    return [row for row in out if not math.isnan(row.ratio)]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300, help="messages per round (at most 300)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows-to", type=Path, help=argparse.SUPPRESS)  # the run inside the namespace
    return ap


if __name__ == "__main__":
    if (ns := parser().parse_args()).rows_to is not None:
        with ns.rows_to.open("wb") as f:
            pickle.dump(measure(ns), f)
    else:
        standalone(parser, rows)
