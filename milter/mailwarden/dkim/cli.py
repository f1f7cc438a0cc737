"""`mailwarden keygen` and `mailwarden check-keys`."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailwarden.dkim.keys import KeyRecordError, PrivateKey, parse_key_record
from mailwarden.errors import CommandFailed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this feature's subcommands; each sets `func` (args -> exit status) as its default."""
    kg = subparsers.add_parser(
        "keygen", help="create a DKIM key and print its DNS TXT record",
        description="Writes DIR/<domain>.<selector>.key (mode 0600) and prints the TXT record in "
        "zone-file syntax, also written to DIR/<domain>.<selector>.zone.",
    )
    kg.add_argument("--domain", required=True, type=_dns_name("domain"))
    kg.add_argument("--selector", required=True, type=_dns_name("selector"))
    kg.add_argument("--algorithm", choices=("rsa", "ed25519"), default="rsa")
    kg.add_argument("--bits", type=_rsa_bits, default=2048,
                    help=f"RSA key size, {RSA_BITS[0]} to {RSA_BITS[1]} (default 2048)")
    kg.add_argument("--out", default=".", metavar="DIR",
                    help="directory for the files (default .); created if its parent exists")
    kg.add_argument("--force", action="store_true", help="overwrite an existing key file")
    kg.set_defaults(func=cmd_keygen)

    ck = subparsers.add_parser(
        "check-keys", help="compare each configured DKIM key with its public key in DNS",
        description="Like opendkim-testkey: exit status 0 when every key is published and matches.",
    )
    ck.add_argument("--config", "-c", metavar="FILE", help="TOML configuration")
    ck.add_argument("--zone", action="append", default=[], metavar="FILE",
                    help="answer DNS queries from this RFC 1035 master file (repeatable)")
    ck.set_defaults(func=cmd_check_keys)


# Verifiers refuse keys under 1024 bits (RFC 8301); past 4096 bits the record no longer fits common
# DNS setups, and generating the key takes minutes.
RSA_BITS = (1024, 4096)
# A DNS label of letters, digits and hyphens (RFC 6376 3.1 selectors, RFC 5321 domains).
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.I)


def _rsa_bits(text: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not RSA_BITS[0] <= bits <= RSA_BITS[1]:
        raise argparse.ArgumentTypeError(f"RSA keys are {RSA_BITS[0]} to {RSA_BITS[1]} bits, not {bits}")
    return bits


def _dns_name(what: str) -> Callable[[str], str]:
    """An argparse type: a domain name or selector of valid DNS labels, lower-cased."""

    def check(text: str) -> str:
        name = text.lower().removesuffix(".")
        labels = name.split(".")
        if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
            raise argparse.ArgumentTypeError(
                f"{what} {text!r} is not a DNS name (labels of letters, digits and hyphens)")
        return name

    return check


def txt_record(name: str, value: str) -> str:
    """`name IN TXT ( "..." "..." )` with character-strings of at most 255 bytes."""
    data = value.encode("ascii")
    parts = [data[i:i + 255].decode("ascii") for i in range(0, len(data), 255)]
    strings = "\n\t".join(f'"{p}"' for p in parts)
    return f"{name}.\t3600\tIN\tTXT\t( {strings} )\n"


def cmd_keygen(args: argparse.Namespace) -> int:
    domain, selector = args.domain, args.selector
    out = Path(args.out)
    try:
        # Only the directory asked for, private (it holds keys); never its parents.
        out.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise CommandFailed(f"keygen: --out {out}: cannot create: {exc.strerror}") from None
    if args.algorithm == "rsa":
        if args.bits < 2048:
            print("mailwarden: keygen: warning: RFC 8301 recommends at least 2048 bits", file=sys.stderr)
        key = PrivateKey(rsa.generate_private_key(public_exponent=65537, key_size=args.bits))
    else:
        key = PrivateKey(ed25519.Ed25519PrivateKey.generate())
    path = out / f"{domain}.{selector}.key"
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if args.force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CommandFailed(f"keygen: {path} exists (use --force to overwrite)") from None
    except OSError as exc:
        raise CommandFailed(f"keygen: {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key.to_pem())
    record = txt_record(f"{selector}._domainkey.{domain}", key.public_record())
    (out / f"{domain}.{selector}.zone").write_text(record, encoding="ascii")
    print(f"; private key: {path} ({key.algorithm}, {key.bits} bits)")
    print(record, end="")
    return 0


def cmd_check_keys(args: argparse.Namespace) -> int:
    from mailwarden.bootstrap import build_resolver
    from mailwarden.config import load
    from mailwarden.dkim.build import load_keys
    from mailwarden.errors import DnsTempError

    config = load(args.config)
    keys = load_keys(config)  # ConfigError on an unreadable, unsafe or malformed key
    resolver = build_resolver(config, args.zone)
    if not keys:
        print("check-keys: no [dkim.keys] configured")
        return 0
    bad = 0
    for name, k in keys.items():
        where = f"{k.selector}._domainkey.{k.domain}"
        label = f"{name} ({k.key.algorithm}, {k.key.bits} bits) {where}"
        try:
            records = resolver.txt(where)
        except DnsTempError as exc:
            print(f"{label}: TEMPERROR: {exc.reason}")
            bad += 1
            continue
        if not records:
            print(f"{label}: NO KEY: no TXT record")
            bad += 1
            continue
        problems = []
        for record in records:
            try:
                pub = parse_key_record(record)
            except KeyRecordError as exc:
                problems.append(str(exc))
                continue
            if pub.der() == k.key.public_bytes():
                weak = k.key.key_type == "rsa" and k.key.bits < 2048
                warn = " (warning: RSA key under 2048 bits)" if weak else ""
                print(f"{label}: OK{warn}")
                break
            problems.append("published key does not match the private key")
        else:
            print(f"{label}: BAD: {'; '.join(problems)}")
            bad += 1
    return 1 if bad else 0
