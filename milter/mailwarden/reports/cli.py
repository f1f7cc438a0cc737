"""`mailwarden reports build` (report files) and `mailwarden reports send` (mail the due ones)."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from mailwarden.config import Config, load
from mailwarden.errors import MailwardenError
from mailwarden.reports.store import Store, open_store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = subparsers.add_parser("reports", help="DMARC aggregate reports from the recorded evaluations")
    sub = rp.add_subparsers(dest="reports_command", required=True, metavar="ACTION")

    b = sub.add_parser("build", help="write one gzipped XML report per policy domain and interval",
                       description="Writes RFC 7489 aggregate reports, named as section 7.2.1.1 says, "
                       "for every interval with rows in [--begin, --end). Sends nothing, marks nothing.")
    _common(b)
    b.add_argument("--out", required=True, type=Path, metavar="DIR")
    b.add_argument("--begin", type=_time, default=0, metavar="T",
                   help="UTC start: seconds since the epoch or ISO 8601 (default: the first row)")
    b.add_argument("--end", type=_time, default=None, metavar="T", help="UTC end (default: now)")
    b.set_defaults(func=cmd_build)

    s = sub.add_parser("send", help="mail every due report not sent yet, then prune old rows",
                       description="Run from the systemd timer (contrib/systemd). A report is due once "
                       "its interval ended; it goes to the rua= mailto: destinations (external ones "
                       "verified), through [reports] relay, once, whatever the number of hosts.")
    _common(s)
    s.add_argument("--zone", action="append", default=[], metavar="FILE",
                   help="answer DNS queries from this RFC 1035 master file (repeatable)")
    s.add_argument("--now", type=_time, default=None, metavar="T",
                   help="act as if it were this time (backfill, tests)")
    s.set_defaults(func=cmd_send)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="TOML configuration")
    p.add_argument("--store", metavar="URL", help="report store (default: [reports] store)")


def _time(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (epoch seconds or ISO 8601): {text!r}") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _open(args: argparse.Namespace) -> tuple[Config, Store]:
    config = load(args.config)
    url = args.store if args.store is not None else config.reports.store
    if not url:
        raise MailwardenError("no report store: [reports] store is empty and --store not given")
    return config, open_store(url)


def cmd_build(args: argparse.Namespace) -> int:
    from mailwarden.reports.schedule import metadata, reports

    config, store = _open(args)
    meta, _ = metadata(config.reports)
    end = args.end if args.end is not None else int(time.time())
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for report in reports(store, meta, args.begin, end):
            target = args.out / report.filename(meta.receiver)
            target.write_bytes(report.gzipped())
            print(f"{target} ({report.count} messages)")
    except OSError as exc:
        raise MailwardenError(f"cannot write to {args.out}: {exc.strerror}") from None
    finally:
        store.close()
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from mailwarden.bootstrap import build_resolver
    from mailwarden.dmarc import psl
    from mailwarden.reports.deliver import Sender, dkim_signer
    from mailwarden.reports.schedule import metadata, send_due

    config, store = _open(args)
    resolver = build_resolver(config, args.zone)
    lst = psl.load(config.dmarc.psl_file, config.dmarc.psl_private)
    _, from_address = metadata(config.reports)
    sender = Sender(from_address, config.reports.relay, dkim_signer(config, resolver))
    now = args.now if args.now is not None else int(time.time())
    try:
        result = send_due(store, config.reports, sender, resolver, lambda d: psl.org_domain(d, lst), now,
                          socket.gethostname())
    finally:
        store.close()
    for line in result.sent:
        print(line)
    for note in result.notes:
        print(f"mailwarden: {note}", file=sys.stderr)
    return 1 if result.failed else 0
