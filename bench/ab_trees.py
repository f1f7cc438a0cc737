"""A/B of two mailwarden source trees in one run: CPU per message of each, and OpenDKIM's.

    git archive main milter rules pyproject.toml | tar -x -C /tmp/base
    git archive HEAD milter rules pyproject.toml | tar -x -C /tmp/new
    .venv/bin/python bench/ab_trees.py /tmp/base /tmp/new --op sign [--messages 1500]
                                       [--rounds 5] [--concurrency 4]

Each tree's `mailwarden serve` runs from its own `milter/` (PYTHONPATH), with the rule packs of
that tree (hence `rules` and `pyproject.toml` in the archive: without them no pack is found and
the rule stages cost nothing). A connection per message, as Postfix opens them. The rounds take
the sides in turn, so the machine's load drifts over all of them alike: on a shared machine a
difference smaller than the spread of one side's rounds is not a difference.

--op sign / verify: the DKIM-only configuration of dkim_bench.py, 2 KB. --op outbound: the
outbound pipeline of pipeline_bench.py (privacy pack, RSA + Ed25519 signing), 4 KB.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

from _milters import Milter, Side, interleaved
from dkim_bench import DATA, SIGN, VERIFY, dkim_only, mailwarden, message, opendkim, private_key, signed
from pipeline_bench import OUTBOUND, ZONE, CachedDns, config, outbound_message
from rules_bench import make_table

from mailwarden.resolver.static import StaticZone


def serve_from(tree: Path, tmp: Path, conf: str, name: str, zone: Path | None) -> Milter:
    os.environ["PYTHONPATH"] = str(tree / "milter")
    try:
        return mailwarden(tmp, conf, name, zone=zone)
    finally:
        del os.environ["PYTHONPATH"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--op", choices=["sign", "verify", "outbound"], default="sign")
    ap.add_argument("--messages", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="abtrees") as t:
        tmp = Path(t)
        key = private_key(tmp)
        (tmp / "ed.key").write_bytes((DATA / "ed.key").read_bytes())
        (tmp / "ed.key").chmod(0o600)
        zone = StaticZone.from_files([DATA / "test.zone"])
        (tmp / "keys.txt").write_text("rsa._domainkey.example.com "
                                      + b"".join(zone.txt("rsa._domainkey.example.com")).decode() + "\n")
        dns = None
        eml = tmp / "m.eml"
        zone_file: Path | None = DATA / "test.zone"
        if args.op == "outbound":
            (tmp / "bench.zone").write_text((DATA / "test.zone").read_text() + ZONE)
            dns = CachedDns(StaticZone.from_files([tmp / "bench.zone"]))
            pack = tmp / "pack"
            (pack / "header_checks").mkdir(parents=True)
            (pack / "header_checks" / "60-bench.pcre").write_bytes(make_table(1000, random.Random(15)))
            conf = config(key, dns.address, pack)
            eml.write_bytes(outbound_message(4096))
            extra = [*OUTBOUND, "--expect-header", "DKIM-Signature:d=example.com"]
            zone_file = None
        else:
            conf = dkim_only(key)
            eml.write_bytes(message(2048) if args.op == "sign" else signed(message(2048)))
            extra = SIGN if args.op == "sign" else VERIFY
        milters: list[Milter] = []
        try:
            milters.append(base := serve_from(args.base, tmp, conf, "base", zone_file))
            milters.append(new := serve_from(args.new, tmp, conf, "new", zone_file))
            milters.append(ref := opendkim(tmp, "v" if args.op == "verify" else "s", key, tmp / "keys.txt"))
            sides = [Side("base", [base], extra), Side("new", [new], extra), Side("OpenDKIM", [ref], extra)]
            measured = interleaved(sides, args.messages, args.concurrency, args.rounds,
                                   ["--eml", str(eml), "--per-message-connections"])
            odk = measured[2]
            for m in measured:
                rounds = ", ".join(f"{r.cpu_ms:.3f}" for r in m.rounds)
                ratio = "" if m is odk else (f"; ratio to OpenDKIM best {m.best / odk.best:.2f}, "
                                             f"median {m.median / odk.median:.2f}")
                print(f"{m.label}: {m.best:.0f}/s best, {m.median:.0f}/s median; CPU {m.mid('cpu_ms'):.3f} "
                      f"ms/msg median (rounds {rounds}){ratio}")
        finally:
            for m in milters:
                m.stop()
            if dns is not None:
                dns.close()


if __name__ == "__main__":
    main()
