"""DKIM signing and verifying: `mailwarden serve` against OpenDKIM, same machine, same run, same load.

    .venv/bin/python bench/dkim_bench.py [--messages 1500] [--concurrency 4 32] [--sizes 2048 102400]
                                         [--rounds 2] [--ops sign verify] [--per-message-connections]
                                         [--json]

Both sign with the same RSA-2048 key (tests/data/dkim/rsa.key), relaxed/relaxed, and verify the same
messages signed with it (keys from tests/data/dkim/test.zone for mailwarden, TestPublicKeys for
OpenDKIM: neither touches the network). Load comes from ../shared/tools/milterload.py over unix
sockets; rounds are interleaved and the best of each side is kept. By default each of the c
connections carries every message in turn (milterload's default); --per-message-connections opens
one per message, as Postfix's smtpd does for a session that sends one message. Prints messages/s
and the ratio mailwarden/OpenDKIM; targets (issue 4): sign >= 2.5x (2 KB), >= 1.5x (100 KB);
verify >= 2x (2 KB), >= 1.2x (100 KB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _milters import LOAD, ROOT, stop, wait_socket

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


def opendkim(tmp: Path, mode: str, key: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = tmp / f"opendkim-{mode}.sock"
    conf = tmp / f"opendkim-{mode}.conf"
    keys = tmp / "keys.txt"
    conf.write_text(
        f"Mode {mode}\nSocket local:{sock}\nBackground no\nSyslog no\nRequireSafeKeys false\n"
        f"Domain example.com\nSelector rsa\nKeyFile {key}\nCanonicalization relaxed/relaxed\n"
        f"SignHeaders From,To,Subject,Date,Message-ID\nOversignHeaders From\nInternalHosts 127.0.0.1\n"
        f"TestPublicKeys {keys}\nAuthservID bench.test\nPidFile {tmp / f'opendkim-{mode}.pid'}\n"
    )
    proc = subprocess.Popen(["opendkim", "-f", "-x", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, "opendkim")
    return proc, sock


def mailwarden(tmp: Path, key: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = tmp / "mailwarden.sock"
    conf = tmp / "mailwarden.toml"
    # Only DKIM work: header rules, SPF and DMARC off (OpenDKIM does none of it); the A-R header
    # stays on, as OpenDKIM writes one too.
    conf.write_text(
        "[milter]\nlog_level = \"warning\"\n[rules]\nenabled = false\n"
        "[spf]\nenabled = false\n[dmarc]\nenabled = false\n"

        f"[dkim.keys.rsa]\ndomain = \"example.com\"\nselector = \"rsa\"\nkey_file = \"{key}\"\n"
        "[[dkim.sign]]\nmatch = [\"example.com\"]\nkeys = [\"rsa\"]\n"
    )
    cmd = [str(Path(sys.executable).parent / "mailwarden"), "serve", "--socket", f"unix:{sock}",
           "--config", str(conf), "--zone", str(DATA / "test.zone")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, "mailwarden serve")
    return proc, sock


def load(sock: Path, eml: Path, n: int, conc: int, extra: list[str]) -> float:
    proc = subprocess.run(
        [sys.executable, str(LOAD), "--socket", f"unix:{sock}", "-n", str(n), "-c", str(conc),
         "--eml", str(eml), "--json", *extra],
        capture_output=True, text=True, check=False,
    )
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"milterload failed: {proc.stderr[-2000:]}") from None
    if proc.returncode != 0:
        raise SystemExit(f"milterload: errors or missing headers on {sock.name}: {proc.stdout[-1500:]}")
    return float(result["msgs_per_s"])


def measure(op: str, size: int, conc: int, sockets: dict[str, Path], eml: Path, extra: list[str],
            args: argparse.Namespace) -> dict[str, object]:
    best = {"opendkim": 0.0, "mailwarden": 0.0}
    for sock in sockets.values():  # warm-up
        load(sock, eml, min(200, args.messages), conc, extra)
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        for name, sock in sockets.items():
            best[name] = max(best[name], load(sock, eml, args.messages, conc, extra))
    ratio = best["mailwarden"] / best["opendkim"]
    target = TARGETS.get((op, size))
    mark = "" if target is None else (" ok" if ratio >= target else f" BELOW {target}x")
    print(f"{op:6s} {size // 1024:4d} KB c={conc:<3d} OpenDKIM {best['opendkim']:7.0f}/s  "
          f"mailwarden {best['mailwarden']:7.0f}/s  ratio {ratio:5.2f}{mark}", flush=True)
    return {"op": op, "size": size, "concurrency": conc, "opendkim": best["opendkim"],
            "mailwarden": best["mailwarden"], "ratio": ratio, "target": target}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1500, help="messages per measurement")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[4, 32])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 102400])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ops", nargs="+", default=["sign", "verify"], choices=["sign", "verify"])
    ap.add_argument("--per-message-connections", action="store_true",
                    help="a new milter connection for each message (default: c connections, reused)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("opendkim") is None:
        print("opendkim is not installed: skipped")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="dkimbench") as t:
        tmp = Path(t)
        key = tmp / "rsa.key"
        shutil.copy(DATA / "rsa.key", key)
        key.chmod(0o600)
        from mailwarden.resolver.static import StaticZone

        zone = StaticZone.from_files([DATA / "test.zone"])
        (tmp / "keys.txt").write_text("rsa._domainkey.example.com "
                                      + b"".join(zone.txt("rsa._domainkey.example.com")).decode() + "\n")
        for size in args.sizes:
            raw = message(size)
            (tmp / f"plain-{size}.eml").write_bytes(raw)
            (tmp / f"signed-{size}.eml").write_bytes(signed(raw))
        procs = []
        try:
            odk_s, odk_s_sock = opendkim(tmp, "s", key)
            procs.append(odk_s)
            odk_v, odk_v_sock = opendkim(tmp, "v", key)
            procs.append(odk_v)
            mw, mw_sock = mailwarden(tmp, key)
            procs.append(mw)
            for op in args.ops:
                if op == "sign":
                    extra = ["--auth", "alice", "--expect-header", "DKIM-Signature:d=example.com"]
                    sockets = {"opendkim": odk_s_sock, "mailwarden": mw_sock}
                    prefix = "plain"
                else:
                    extra = ["--client-addr", "192.0.2.10", "--expect-header",
                             "Authentication-Results:dkim=pass"]
                    sockets = {"opendkim": odk_v_sock, "mailwarden": mw_sock}
                    prefix = "signed"
                if args.per_message_connections:
                    extra.append("--per-message-connections")
                for size in args.sizes:
                    for conc in args.concurrency:
                        eml = tmp / f"{prefix}-{size}.eml"
                        rows.append(measure(op, size, conc, sockets, eml, extra, args))
        finally:
            for p in procs:
                stop(p)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
