"""ARC verify and seal cost per message beside plain DKIM verification, same process, same run.

    .venv/bin/python bench/arc_bench.py [--messages 300] [--rounds 5] [--size 2048] [--json]

A 2 KB message DKIM-signed with RSA-2048 (tests/data/dkim/rsa.key), carried through a 3-hop ARC
chain, every hop sealed with RSA-2048 (keys from tests/data/arc/arc.zone: no network). Measured,
interleaved round by round, best round kept:
- dkim-verify: the author's DKIM-Signature (mailwarden.dkim.verify.Verifier);
- arc-verify: the whole 3-hop chain (RFC 8617 5.2: newest AMS, three seals, two older AMSes for
  oldest-pass);
- arc-seal: a 4th set (AAR, AMS, AS) on that chain.
In-process CPU cost of the work itself (DNS answered from the static zone, keys parsed once), so
the milter's own per-message overhead (bench/milter_overhead.py) comes on top of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "milter"))

from mailwarden.arc.chain import collect  # noqa: E402
from mailwarden.arc.seal import ArcSealer  # noqa: E402
from mailwarden.arc.verify import ArcVerifier  # noqa: E402
from mailwarden.core.model import Header  # noqa: E402
from mailwarden.core.wire import parse_message  # noqa: E402
from mailwarden.dkim.keys import load_private_key  # noqa: E402
from mailwarden.dkim.sign import Signer, SigningKey  # noqa: E402
from mailwarden.dkim.verify import Verifier, VerifyPolicy  # noqa: E402
from mailwarden.resolver.static import StaticZone  # noqa: E402

KEY = load_private_key(ROOT / "tests/data/dkim/rsa.key", require_safe=False)
ZONE = StaticZone.from_files([ROOT / "tests/data/arc/arc.zone"])
SIGNED = ("From", "To", "Subject", "Date", "Message-ID")
HOPS = ("forwarder.example", "list.example.org", "relay.example")
NOW = time.time()


def message(size: int) -> bytes:
    head = (b"From: Alice <alice@sender.example>\r\nTo: Bob <bob@example.org>\r\nSubject: benchmark\r\n"
            b"Date: Sun, 22 Nov 2026 03:00:00 +0000\r\nMessage-ID: <bench@sender.example>\r\n\r\n")
    para = (b"Hi Bob,\r\n\r\nthe quarterly numbers are in and they look better than we expected.  Sales\r\n"
            b"grew in every region. \r\n\r\n> Could you send the figures before Thursday?\r\n\r\n")
    return head + para * max(1, (size - len(head)) // len(para))


def sign_dkim(raw: bytes) -> bytes:
    p = parse_message(raw)
    (value,) = Signer("relaxed/relaxed", SIGNED).sign([SigningKey("rsa", "sender.example", "rsa", KEY)],
                                                       p.headers, lambda: [p.body], NOW)
    return Header("DKIM-Signature", value).raw() + b"\r\n" + raw


def seal(raw: bytes, domain: str, cv: str) -> bytes:
    p = parse_message(raw)
    ar = f"mx.{domain}; dkim=pass header.d=sender.example" + ("; arc=pass" if cv == "pass" else "")
    new = ArcSealer(SIGNED).seal(SigningKey("rsa", domain, "rsa", KEY), collect(p.headers), cv, ar,
                                 p.headers, lambda: iter([p.body]), NOW)
    return b"".join(h.raw() + b"\r\n" for h in [*new, *p.headers]) + b"\r\n" + p.body


def timed(fn: Callable[[], object], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    raw = sign_dkim(message(args.size))
    for i, domain in enumerate(HOPS):
        raw = seal(raw, domain, "none" if i == 0 else "pass")
    p = parse_message(raw)
    dkim = Verifier(ZONE, lambda: NOW, VerifyPolicy())
    arc = ArcVerifier(ZONE)
    assert [r.result for r in dkim.verify(p.headers, lambda: iter([p.body]))] == ["pass"]
    assert arc.verify(p.headers, lambda: iter([p.body])).result == "pass"
    ops: dict[str, Callable[[], object]] = {
        "dkim-verify": lambda: dkim.verify(p.headers, lambda: iter([p.body])),
        "arc-verify": lambda: arc.verify(p.headers, lambda: iter([p.body])),
        "arc-seal": lambda: seal(raw, "mx.example.com", "pass"),
    }
    best = {name: float("inf") for name in ops}
    for _ in range(args.rounds):
        for name, fn in ops.items():
            best[name] = min(best[name], timed(fn, args.messages))
    base = best["dkim-verify"]
    if args.json:
        print(json.dumps({k: {"us": round(v * 1e6, 1), "x_dkim_verify": round(v / base, 2)}
                          for k, v in best.items()}))
        return 0
    print(f"{args.size}-byte message, RSA-2048, 3-hop chain; CPU per message, best of {args.rounds} "
          f"rounds of {args.messages}")
    for name, v in best.items():
        print(f"  {name:12} {v * 1e6:9.1f} us  ({v / base:4.2f}x dkim-verify, {1 / v:7.0f}/s on one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
