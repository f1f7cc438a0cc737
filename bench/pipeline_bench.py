"""The whole pipeline against the stack it replaces, and against the ceiling of a pymilter milter.

    .venv/bin/python bench/pipeline_bench.py [--messages 1500] [--rounds 3] [--rows inbound ...]

Rows (a new milter connection per message, as Postfix's smtpd opens one per SMTP session):
- inbound: mailwarden with its defaults plus a 1,000-rule header_checks pack, against OpenDKIM
  (verify) -> OpenDMARC (with its own SPF check), chained as Postfix chains two milters
  (_chain.py). A 4 KB message signed by example.com, from a client its SPF record permits, at c=4;
  target >= 3x.
- p99: the same at c=32 with a 2 KB message; target: mailwarden's p99 under 10 ms.
- outbound: mailwarden with its defaults (the privacy pack) signing with RSA and Ed25519 against
  OpenDKIM signing with one RSA key; target >= 2x.
- ceiling: mailwarden (inbound, as above; and with every stage off) against a pymilter milter
  that reads every header and the body and does nothing else (reading_milter.py, as many
  processes as mailwarden's workers); the overhead is the CPU per message above it.

Every side gets its DNS (DKIM key, SPF, DMARC) from one loopback DNS server answering from a
static zone (tests/dmarc/loopdns.py); the C milters reach it through a private
/etc/resolv.conf (`unshare --mount`, so this needs root), mailwarden through [dns] nameservers.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _milters import ROOT, Milter, Row, Side, interleaved, standalone, wait_socket
from dkim_bench import DATA, mailwarden, message, opendkim, private_key, signed
from rules_bench import make_table

sys.path.insert(0, str(ROOT / "tests" / "dmarc"))
from loopdns import LoopbackDns, resolv_wrapper

from mailwarden.resolver.static import StaticZone

CLIENT = "192.0.2.10"
ZONE = """
example.com.          300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.example.com.   300 IN TXT "v=DMARC1; p=reject"
client.example.net.   300 IN A   192.0.2.10
client.example.net.   300 IN TXT "v=spf1 a -all"
"""
INBOUND = ["--client-addr", CLIENT, "--mail-from", "alice@example.com", "--per-message-connections"]
OUTBOUND = ["--auth", "alice", "--mail-from", "alice@example.com", "--per-message-connections"]


class CachedDns(LoopbackDns):
    """The loopback server answering each distinct question once: its Python must not eat the
    CPU the milters are measured on."""

    def __init__(self, zone: StaticZone) -> None:
        self._seen: dict[bytes, bytes] = {}
        super().__init__(zone)

    def answer(self, wire: bytes) -> bytes:
        key = wire[2:]  # the question without its id
        out = self._seen.get(key)
        if out is None:
            out = self._seen[key] = super().answer(wire)[2:]
        return wire[:2] + out


def inbound_message(size: int) -> bytes:
    """About `size` bytes as they arrive from the internet: signed, with Received headers above."""
    received = b"".join(
        b"Received: from relay%d.example.com (relay%d.example.com [192.0.2.%d])\r\n"
        b"\tby mx.example.org (Postfix) with ESMTPS id 4Xy%dQ for <bob@example.org>;\r\n"
        b"\tSun, 22 Nov 2026 03:00:0%d +0000\r\n" % (i, i, 10 + i, i, i) for i in range(3))
    return _sized(lambda n: received + signed(message(n)), size)


def outbound_message(size: int) -> bytes:
    """About `size` bytes as a mail client submits it: a User-Agent, and the submission hop's
    Received header, for the privacy pack."""
    head = (b"Received: from [10.0.0.7] (laptop.lan [10.0.0.7])\r\n\tby submit.example.com; "
            b"Sun, 22 Nov 2026 03:00:00 +0000\r\nUser-Agent: Thunderbird 128.0\r\n")
    return _sized(lambda n: head + message(n), size)


def _sized(build: Callable[[int], bytes], size: int) -> bytes:
    """build(n) for the n that makes it closest to `size` bytes (the body grows by paragraphs)."""
    candidates = (build(n) for n in range(max(600, size - 2000), size + 200, 100))
    return min(candidates, key=lambda m: abs(len(m) - size))


def opendmarc(tmp: Path, resolv: Path) -> Milter:
    sock = tmp / "opendmarc.sock"
    ignore = tmp / "ignore.hosts"
    ignore.write_text("")
    import publicsuffixlist

    psl = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat")
    conf = tmp / "opendmarc.conf"
    conf.write_text(
        f"AuthservID bench.test\nTrustedAuthservIDs bench.test\nPublicSuffixList {psl}\n"
        f"IgnoreHosts {ignore}\nRejectFailures true\nSPFSelfValidate true\nSPFIgnoreResults true\n"
        f"FailureReports false\nSyslog false\nSocket local:{sock}\nPidFile {tmp / 'opendmarc.pid'}\n")
    proc = subprocess.Popen(resolv_wrapper(resolv, ["/usr/sbin/opendmarc", "-f", "-c", str(conf)]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, "opendmarc")
    return Milter("OpenDMARC", proc, f"unix:{sock}")


def reading_milter(tmp: Path, workers: int) -> Milter:
    sock = tmp / "reading.sock"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("reading_milter.py")),
                             f"unix:{sock}", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, "reading milter")
    return Milter("reading pymilter milter", proc, f"unix:{sock}")


def config(key: Path, nameserver: str, pack: Path | None, stages: bool = True) -> str:
    text = (f'[milter]\nlog_level = "warning"\n[policy]\nauthserv_id = "bench.test"\n'
            f'[dns]\nnameservers = ["{nameserver}"]\n')
    if not stages:
        return text + ("[rules]\nenabled = false\n[spf]\nenabled = false\n[dmarc]\nenabled = false\n"
                       "[dkim.verify]\nenabled = false\n[authres]\nenabled = false\n")
    if pack is not None:
        text += f'[rules]\ndirs = ["{pack}"]\n'
    ed = key.with_name("ed.key")
    return text + (
        f'[dkim.keys.rsa]\ndomain = "example.com"\nselector = "rsa"\nkey_file = "{key}"\n'
        f'[dkim.keys.ed]\ndomain = "example.com"\nselector = "ed"\nkey_file = "{ed}"\n'
        '[[dkim.sign]]\nmatch = ["example.com"]\nkeys = ["rsa", "ed"]\n')


def rows(args: argparse.Namespace) -> list[Row]:
    if os.geteuid() != 0:
        print("pipeline_bench.py needs root (a mount namespace for OpenDMARC's resolv.conf): skipped")
        return []
    out: list[Row] = []
    zone_text = (DATA / "test.zone").read_text() + ZONE
    with tempfile.TemporaryDirectory(prefix="pipebench") as t:
        tmp = Path(t)
        (tmp / "bench.zone").write_text(zone_text)
        dns = CachedDns(StaticZone.from_files([tmp / "bench.zone"]))
        resolv = dns.resolv_conf(tmp)
        key = private_key(tmp)
        ed = tmp / "ed.key"
        ed.write_bytes((DATA / "ed.key").read_bytes())
        ed.chmod(0o600)
        pack = tmp / "pack"
        (pack / "header_checks").mkdir(parents=True)
        (pack / "header_checks" / "60-bench.pcre").write_bytes(make_table(1000, random.Random(15)))
        emls = {}
        for name, raw in (("in-4k", inbound_message(4096)), ("in-2k", inbound_message(2048)),
                          ("out-4k", outbound_message(4096))):
            emls[name] = tmp / f"{name}.eml"
            emls[name].write_bytes(raw)
        milters: list[Milter] = []
        try:
            milters.append(mw := mailwarden(tmp, config(key, dns.address, pack)))
            workers = len(mw.pids()) - 1
            milters.append(odk_v := opendkim(tmp, "v", key, nameserver=dns.address))
            milters.append(odk_s := opendkim(tmp, "s", key))
            milters.append(odmarc := opendmarc(tmp, resolv))
            chain = Side("OpenDKIM -> OpenDMARC", [odk_v, odmarc], [
                *INBOUND, "--expect-header", "Authentication-Results:dkim=pass",
                "--expect-header", "Authentication-Results:dmarc=pass"])
            inbound = Side("mailwarden", [mw], [*INBOUND, "--expect-header",
                                                "Authentication-Results:dmarc=pass"])
            n, r = args.messages, args.rounds
            if "inbound" in args.rows:
                out.append(Row("Inbound pipeline 4 KB, c=4 (+1,000 header_checks)",
                               interleaved([inbound, chain], n, 4, r, ["--eml", str(emls["in-4k"])]),
                               "bench/pipeline_bench.py --rows inbound", min_ratio=3.0))
            if "p99" in args.rows:
                out.append(Row("Inbound pipeline 2 KB, c=32: p99",
                               interleaved([inbound, chain], n, 32, r, ["--eml", str(emls["in-2k"])]),
                               "bench/pipeline_bench.py --rows p99", max_p99_ms=10.0))
            if "outbound" in args.rows:
                sign = ["--expect-header", "DKIM-Signature:d=example.com"]
                ed = ["--expect-header", "DKIM-Signature:a=ed25519"]
                sides = [Side("mailwarden", [mw], [*OUTBOUND, *sign, *ed]),
                         Side("OpenDKIM sign", [odk_s], [*OUTBOUND, *sign])]
                out.append(Row("Outbound 4 KB, c=4: privacy pack, RSA + Ed25519 vs one RSA",
                               interleaved(sides, n, 4, r, ["--eml", str(emls["out-4k"])]),
                               "bench/pipeline_bench.py --rows outbound", min_ratio=2.0))
            if "ceiling" in args.rows:
                milters.append(bare := mailwarden(tmp, config(key, dns.address, None, stages=False), "bare"))
                milters.append(ceiling := reading_milter(tmp, workers))
                ref = Side("reading pymilter milter", [ceiling], INBOUND)
                eml = ["--eml", str(emls["in-4k"])]
                bare_side = Side("mailwarden (stages off)", [bare], INBOUND)
                for name, side in (("mailwarden inbound", inbound), ("mailwarden, stages off,", bare_side)):
                    measured = interleaved([side, ref], n, 4, r, eml)
                    above = (measured[0].mid("cpu_ms") - measured[1].mid("cpu_ms")) * 1000
                    out.append(Row(f"Ceiling: {name} vs a milter that only reads, 4 KB, c=4", measured,
                                   "bench/pipeline_bench.py --rows ceiling",
                                   note=f"mailwarden's CPU above the ceiling: {above:.0f} us per message"))
            for row in out:
                row.print()
        finally:
            for m in milters:
                m.stop()
            dns.close()
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1500, help="messages per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", nargs="+", default=["inbound", "p99", "outbound", "ceiling"],
                    choices=["inbound", "p99", "outbound", "ceiling"])
    return ap


if __name__ == "__main__":
    standalone(parser, rows)
