"""DKIM signing and verifying: `mailwarden serve` against OpenDKIM, same machine, same run, same load.

    .venv/bin/python bench/dkim_bench.py [--messages 1500] [--concurrency 4 32] [--sizes 2048 102400]
                                         [--rounds 3] [--ops sign verify]
                                         [--modes both|per-message|reused]

Both sign with the same RSA-2048 key (tests/data/dkim/rsa.key), relaxed/relaxed, and verify the same
messages signed with it (keys from tests/data/dkim/test.zone for mailwarden, TestPublicKeys for
OpenDKIM: neither touches the network). Load comes from ../shared/tools/milterload.py over unix
sockets, in interleaved rounds (_milters.py). Two modes: a new connection per message, as
Postfix's smtpd opens one per SMTP session and most sessions carry one message (2 KB rows), and
c connections each carrying every message in turn (milterload's default). Targets (issues 4 and
15): sign >= 2.5x (2 KB), >= 1.5x (100 KB); verify >= 2x (2 KB), >= 1.2x (100 KB).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _milters import ROOT, Milter, Row, Side, interleaved, standalone, wait_socket

sys.path.insert(0, str(ROOT / "milter"))
DATA = ROOT / "tests" / "data" / "dkim"
TARGETS = {("sign", 2048): 2.5, ("sign", 102400): 1.5, ("verify", 2048): 2.0, ("verify", 102400): 1.2}


def message(size: int) -> bytes:
    head = (
        b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: benchmark message\r\n"
        b"Date: Sun, 22 Nov 2026 03:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    # Plain text as people write it: wrapped paragraphs, a quoted reply, the odd double space or
    # trailing blank, so relaxed canonicalization has some work but not on every line.
    para = (
        b"Hi Bob,\r\n\r\nthe quarterly numbers are in and they look better than we expected.  Sales\r\n"
        b"grew in every region, and the new product line already pays for itself. I attach\r\n"
        b"the summary; the full report follows next week. \r\n\r\n"
        b"> Could you send the figures before the board meeting on Thursday? We need\r\n"
        b"> them for the budget discussion and for the slides.\r\n\r\n"
        b"Best regards,\r\nAlice\r\n-- \r\nAlice Example, Finance, Example Corp.\r\n\r\n"
    )
    body = para * max(1, (size - len(head)) // len(para))
    return head + body


def signed(raw: bytes) -> bytes:
    from mailwarden.core.model import Header
    from mailwarden.core.wire import parse_message
    from mailwarden.dkim.keys import load_private_key
    from mailwarden.dkim.sign import Signer, SigningKey

    p = parse_message(raw)
    key = SigningKey("rsa", "example.com", "rsa", load_private_key(DATA / "rsa.key", require_safe=False))
    (value,) = Signer("relaxed/relaxed", ("From", "To", "Subject", "Date", "Message-ID"), ("From",)).sign(
        [key], p.headers, lambda: [p.body], time.time())
    return Header("DKIM-Signature", value).raw() + b"\r\n" + raw


def opendkim(tmp: Path, mode: str, key: Path, keys: Path | None = None, nameserver: str = "") -> Milter:
    """OpenDKIM signing (mode s) or verifying (v) with `key`; public keys from the file `keys`
    (TestPublicKeys), else from DNS at `nameserver` (Debian's OpenDKIM resolves with libunbound,
    which reads no resolv.conf)."""
    sock = tmp / f"opendkim-{mode}.sock"
    conf = tmp / f"opendkim-{mode}.conf"
    conf.write_text(
        f"Mode {mode}\nSocket local:{sock}\nBackground no\nSyslog no\nRequireSafeKeys false\n"
        f"Domain example.com\nSelector rsa\nKeyFile {key}\nCanonicalization relaxed/relaxed\n"
        f"SignHeaders From,To,Subject,Date,Message-ID\nOversignHeaders From\nInternalHosts 127.0.0.1\n"
        + (f"TestPublicKeys {keys}\n" if keys else "")
        + (f"Nameservers {nameserver}\n" if nameserver else "")
        + f"AuthservID bench.test\nPidFile {tmp / f'opendkim-{mode}.pid'}\n"
    )
    proc = subprocess.Popen(["opendkim", "-f", "-x", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, "opendkim")
    return Milter(f"OpenDKIM {'sign' if mode == 's' else 'verify'}", proc, f"unix:{sock}")


def mailwarden(tmp: Path, config: str, name: str = "mailwarden", zone: Path | None = None) -> Milter:
    """`mailwarden serve` with `config` (TOML text), on a unix socket of its own."""
    sock = tmp / f"{name}.sock"
    conf = tmp / f"{name}.toml"
    conf.write_text(config)
    # --user root: workers dropped to user mailwarden cannot read the bench's private directory,
    # where the rule packs' reload check looks every 5 s (and fails the message: a tempfail).
    cmd = [str(Path(sys.executable).parent / "mailwarden"), "serve", "--socket", f"unix:{sock}",
           "--config", str(conf), "--user", "root", *(["--zone", str(zone)] if zone else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, "mailwarden serve")
    return Milter("mailwarden", proc, f"unix:{sock}")


def dkim_only(key: Path) -> str:
    # Only DKIM work: header rules, SPF and DMARC off (OpenDKIM does none of it); the A-R header
    # stays on, as OpenDKIM writes one too.
    return (
        "[milter]\nlog_level = \"warning\"\n[rules]\nenabled = false\n"
        "[spf]\nenabled = false\n[dmarc]\nenabled = false\n"
        f"[dkim.keys.rsa]\ndomain = \"example.com\"\nselector = \"rsa\"\nkey_file = \"{key}\"\n"
        "[[dkim.sign]]\nmatch = [\"example.com\"]\nkeys = [\"rsa\"]\n"
    )


def private_key(tmp: Path) -> Path:
    key = tmp / "rsa.key"
    shutil.copy(DATA / "rsa.key", key)
    key.chmod(0o600)
    return key


SIGN = ["--auth", "alice", "--expect-header", "DKIM-Signature:d=example.com"]
VERIFY = ["--client-addr", "192.0.2.10", "--expect-header", "Authentication-Results:dkim=pass"]


def rows(args: argparse.Namespace) -> list[Row]:
    if shutil.which("opendkim") is None:
        print("opendkim is not installed: skipped")
        return []
    out = []
    with tempfile.TemporaryDirectory(prefix="dkimbench") as t:
        tmp = Path(t)
        key = private_key(tmp)
        from mailwarden.resolver.static import StaticZone

        zone = StaticZone.from_files([DATA / "test.zone"])
        (tmp / "keys.txt").write_text("rsa._domainkey.example.com "
                                      + b"".join(zone.txt("rsa._domainkey.example.com")).decode() + "\n")
        for size in args.sizes:
            raw = message(size)
            (tmp / f"plain-{size}.eml").write_bytes(raw)
            (tmp / f"signed-{size}.eml").write_bytes(signed(raw))
        milters = []
        try:
            milters.append(odk_s := opendkim(tmp, "s", key, tmp / "keys.txt"))
            milters.append(odk_v := opendkim(tmp, "v", key, tmp / "keys.txt"))
            milters.append(mw := mailwarden(tmp, dkim_only(key), zone=DATA / "test.zone"))
            modes = [True, False] if args.modes == "both" else [args.modes == "per-message"]
            for op in args.ops:
                ref, extra, prefix = (odk_s, SIGN, "plain") if op == "sign" else (odk_v, VERIFY, "signed")
                for per_message in modes:
                    for size in args.sizes:
                        if per_message and size > 2048:
                            continue  # the per-message rows are 2 KB
                        for conc in args.concurrency:
                            eml = tmp / f"{prefix}-{size}.eml"
                            how = "a connection per message" if per_message else "connections reused"
                            more = ["--eml", str(eml)]
                            if per_message:
                                more.append("--per-message-connections")
                            sides = [Side("mailwarden", [mw], extra), Side("OpenDKIM", [ref], extra)]
                            row = Row(f"DKIM {op} {size // 1024} KB, c={conc}, {how}",
                                      interleaved(sides, args.messages, conc, args.rounds, more),
                                      f"bench/dkim_bench.py --ops {op} --sizes {size} --concurrency {conc} "
                                      f"--modes {'per-message' if per_message else 'reused'}",
                                      min_ratio=TARGETS.get((op, size)))
                            row.print()
                            out.append(row)
        finally:
            for m in milters:
                m.stop()
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1500, help="messages per measurement")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[4, 32])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 102400])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ops", nargs="+", default=["sign", "verify"], choices=["sign", "verify"])
    ap.add_argument("--modes", default="both", choices=["both", "per-message", "reused"],
                    help="a new milter connection for each message, c connections reused, or both")
    return ap


if __name__ == "__main__":
    standalone(parser, rows)
