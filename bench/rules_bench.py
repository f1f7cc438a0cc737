"""Rule matching speed: mailwarden's matcher against `postmap -hq` on the same tables and headers.

    .venv/bin/python bench/rules_bench.py [--sizes 10,500,5000] [--messages 200]

For each table size it prints the time per header and per 20-header message for mailwarden, the
same per-header time for postmap (its start-up and table compile measured separately with an
empty message and subtracted), and the ratio mailwarden / postmap. Target: 5,000 rules, one
20-header message under 1 ms.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailwarden.rules.loader import load_table
from mailwarden.rules.matcher import Matcher
from mailwarden.rules.postmap import split_message

WORDS = [
    "viagra",
    "casino",
    "lottery",
    "winner",
    "bitcoin",
    "invoice",
    "urgent",
    "password",
    "account",
    "prize",
    "refund",
    "crypto",
    "pharmacy",
    "discount",
    "loan",
    "mortgage",
    "dating",
    "replica",
    "unclaimed",
    "inheritance",
    "verify",
    "suspended",
    "delivery",
    "parcel",
    "wallet",
    "bonus",
]


def make_table(n: int, rng: random.Random) -> bytes:
    """A realistic header_checks table: mostly anchored name + literal, a few harder rules."""
    lines = ["# generated benchmark table"]
    for i in range(n):
        w = rng.choice(WORDS)
        kind = i % 10
        if kind < 4:
            lines.append(f"/^Subject:.*\\b{w}{i}\\b/ REJECT 5.7.1 spam subject {i}")
        elif kind < 6:
            lines.append(f"/^From:.*@(?:mail\\.)?{w}-{i}\\.example\\b/ REJECT 5.7.1 sender {i}")
        elif kind < 7:
            lines.append(f"/^X-Mailer: {w}mailer {i}/ DISCARD")
        elif kind < 8:
            lines.append(f"/^Received: from .*\\[10\\.{i % 250}\\.{i // 250}\\.\\d+\\]/ WARN relay {i}")
        elif kind < 9:
            lines.append(f"/^(To|Cc):.*{w}{i}@/ INFO rcpt {i}")
        else:
            lines.append(f"/^Message-ID: <.*@{w}{i}\\.bulk\\./ HOLD bulk {i}")
    # The last rule matches nothing in the message: every header searches the whole table.
    lines.append("/^X-Never-Present:/ REJECT")
    return ("\n".join(lines) + "\n").encode()


def make_message(rng: random.Random) -> bytes:
    """A typical 20-header message whose headers match no rule (the common, and slowest, case)."""
    hdrs = [
        b"Received: from mx.example.net (mx.example.net [192.0.2.10])\n\tby mail.example.org (Postfix)"
        b" with ESMTPS id 4ABCDEF for <bob@example.org>; Sun, 22 Nov 2026 10:00:00 +0000",
        b"Received: from [10.0.0.5] (unknown [198.51.100.7]) by mx.example.net with ESMTPSA",
        b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\n\th=from:to:subject;"
        b" bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=abcdefghijklmnopqrstuvwxyz0123456789",
        b"From: Alice Example <alice@example.net>",
        b"To: Bob <bob@example.org>, carol@example.org",
        b"Cc: dave@example.org",
        b"Subject: Minutes of the meeting on the quarterly planning review",
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000",
        b"Message-ID: <20261122100000.12345@mx.example.net>",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/alternative; boundary="b1_abcdef"',
        b"Content-Transfer-Encoding: 7bit",
        b"X-Mailer: Thunderbird 115.4",
        b"User-Agent: Mozilla/5.0",
        b"Reply-To: alice@example.net",
        b"List-Id: <planning.example.org>",
        b"List-Unsubscribe: <mailto:leave@example.org>",
        b"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.net",
        b"X-Spam-Score: 0.1",
        b"Thread-Index: AdmF1234567890abcdef",
    ]
    return b"\n".join(hdrs) + b"\n\nbody\n"


def time_ours(table: Path, headers: list[bytes], messages: int) -> float:
    matcher = Matcher([load_table(table)])
    for h in headers:  # warm up
        matcher.lookup(h)
    started = time.perf_counter()
    for _ in range(messages):
        for h in headers:
            matcher.lookup(h)
    return (time.perf_counter() - started) / (messages * len(headers))


def time_postmap(postmap: str, table: Path, message: bytes, copies: int) -> float:
    head, _ = split_message(message)
    many = b"\n".join(head * copies) + b"\n\n"

    def run(data: bytes) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(
                [postmap, "-hq", "-", f"pcre:{table}"], input=data, capture_output=True, check=False
            )
            best = min(best, time.perf_counter() - started)
        return best

    startup = run(b"X-Empty-Message: 1\n\n")
    full = run(many)
    return max(full - startup, 1e-9) / (len(head) * copies)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,500,5000")
    ap.add_argument("--messages", type=int, default=200, help="20-header messages timed per size")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    postmap = shutil.which("postmap") or "/usr/sbin/postmap"
    have_postmap = Path(postmap).exists()
    rng = random.Random(args.seed)
    message = make_message(rng)
    headers, _ = split_message(message)
    print(f"{'rules':>6} {'ours us/hdr':>12} {'ours ms/msg':>12} {'postmap us/hdr':>15} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            table = Path(tmp) / f"bench{size}.pcre"
            table.write_bytes(make_table(size, rng))
            ours = time_ours(table, headers, args.messages)
            theirs = time_postmap(postmap, table, message, args.messages) if have_postmap else float("nan")
            print(
                f"{size:>6} {ours * 1e6:>12.2f} {ours * len(headers) * 1e3:>12.3f}"
                f" {theirs * 1e6:>15.2f} {ours / theirs:>7.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
