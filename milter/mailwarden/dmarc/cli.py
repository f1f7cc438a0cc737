"""`mailwarden dmarc-lookup` (what policy applies to a domain) and `mailwarden psl-refresh`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from publicsuffixlist import PSLURL

from mailwarden.errors import MailwardenError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this feature's subcommands; each sets `func` (args -> exit status) as its default."""
    lk = subparsers.add_parser(
        "dmarc-lookup", help="show the DMARC policy and organizational domain of a domain",
        description="Like opendmarc-check: discovers the DMARC record of DOMAIN the way the milter "
        "does (config [dmarc] discovery and psl_file) and prints it as JSON.",
    )
    lk.add_argument("domain", nargs="+", metavar="DOMAIN")
    lk.add_argument("--config", "-c", metavar="FILE", help="TOML configuration")
    lk.add_argument("--zone", action="append", default=[], metavar="FILE",
                    help="answer DNS queries from this RFC 1035 master file (repeatable)")
    lk.set_defaults(func=cmd_lookup)

    ps = subparsers.add_parser(
        "psl-refresh", help="download the Public Suffix List for [dmarc] psl_file",
        description="Fetches the list (default: publicsuffix.org), checks that it parses and names "
        "well-known suffixes, and atomically replaces FILE. Run it from cron, then reload.",
    )
    ps.add_argument("file", metavar="FILE")
    ps.add_argument("--url", default=PSLURL)
    ps.set_defaults(func=cmd_psl_refresh)


def cmd_lookup(args: argparse.Namespace) -> int:
    from mailwarden.bootstrap import build_resolver
    from mailwarden.config import load
    from mailwarden.dmarc import psl
    from mailwarden.dmarc.discovery import discover_psl, discover_walk
    from mailwarden.errors import DnsTempError

    try:
        config = load(args.config)
        resolver = build_resolver(config, args.zone)
        lst = psl.load(config.dmarc.psl_file, config.dmarc.psl_private)
    except MailwardenError as exc:
        print(f"mailwarden: {exc}", file=sys.stderr)
        return 2
    status = 0
    for domain in args.domain:
        domain = domain.strip().rstrip(".").lower()
        try:
            found = (discover_walk(resolver, domain) if config.dmarc.discovery == "tree-walk"
                     else discover_psl(resolver, domain, lst))
        except DnsTempError as exc:
            print(json.dumps({"domain": domain, "status": "temperror", "reason": str(exc)}))
            status = 1
            continue
        rec = found.record
        print(json.dumps({
            "domain": domain, "status": found.status, "org_domain": found.org_domain,
            "policy_domain": found.policy_domain or None, "reason": found.reason or None,
            "record": None if rec is None else {
                "p": rec.p, "sp": rec.sp or None, "np": rec.np or None, "adkim": rec.adkim,
                "aspf": rec.aspf, "pct": rec.pct, "psd": rec.psd or None, "t": rec.t,
                "rua": list(rec.rua), "ruf": list(rec.ruf), "fo": ":".join(rec.fo),
                "rf": ":".join(rec.rf), "ri": rec.ri, "problems": list(rec.problems)},
        }))
        if found.status != "found":
            status = 1
    return status


def cmd_psl_refresh(args: argparse.Namespace) -> int:
    from publicsuffixlist import PublicSuffixList

    target = Path(args.file)
    try:
        with urllib.request.urlopen(args.url, timeout=60) as resp:
            data = resp.read()
    except OSError as exc:
        print(f"mailwarden: cannot fetch {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        check_list(PublicSuffixList(data.decode("utf-8").splitlines()))
    except (UnicodeDecodeError, ValueError) as exc:
        print(f"mailwarden: {args.url} is not a usable Public Suffix List: {exc}", file=sys.stderr)
        return 1
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".psl-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    print(f"wrote {target} ({len(data)} bytes)")
    return 0


def check_list(lst: object) -> None:
    """Refuse a truncated or foreign file: a few suffixes every real list has."""
    for domain, org in (("a.example.co.uk", "example.co.uk"), ("a.b.example.com", "example.com")):
        if lst.privatesuffix(domain) != org:  # type: ignore[attr-defined]
            raise ValueError(f"{domain} gives {lst.privatesuffix(domain)}, expected {org}")  # type: ignore[attr-defined]
