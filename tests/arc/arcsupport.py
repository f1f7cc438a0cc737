"""Shared helpers for the ARC tests: sealer keys, the static zone, dkimpy hops, our verifier."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from tests.support.builders import runtime as build_runtime_from
from tests.support.builders import transaction

import dkim
from mailwarden.arc.result import ArcResult
from mailwarden.arc.verify import ArcPolicy, ArcVerifier
from mailwarden.bootstrap import Runtime
from mailwarden.core.model import Direction, Header, Transaction
from mailwarden.core.wire import parse_message
from mailwarden.dkim.keys import PrivateKey, load_private_key
from mailwarden.dkim.sign import Signer, SigningKey
from mailwarden.resolver.static import StaticZone

DATA = Path(__file__).resolve().parent.parent / "data"
ZONE = DATA / "arc" / "arc.zone"
KEYS = DATA / "dkim"

MSG = (
    b"From: Alice <alice@sender.example>\r\n"
    b"To: list@list.example.org\r\n"
    b"Subject: meeting  notes\r\n"
    b"Date: Sun, 22 Nov 2026 03:00:00 +0000\r\n"
    b"Message-ID: <arc1@sender.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello list,\r\n"
    b"\tthe notes are attached.\r\n"
    b"\r\n"
)
FIRST_HOP_AR = b"dkim=pass header.d=sender.example header.s=rsa; spf=pass smtp.mailfrom=alice@sender.example"


def key(name: str) -> PrivateKey:
    return load_private_key(KEYS / f"{name}.key", require_safe=False)


def signing_key(name: str, domain: str, selector: str | None = None) -> SigningKey:
    return SigningKey(name, domain, selector or name, key(name))


def zone() -> StaticZone:
    return StaticZone.from_files([ZONE])


def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes:
    """dkimpy's DNS hook answered from the same static zone."""
    text = name.decode() if isinstance(name, bytes) else name
    return b"".join(zone().txt(text))


def dkimpy_key(name: str) -> bytes:
    """The key in the form dkimpy wants: PKCS#1 PEM (RSA), the base64 seed (Ed25519)."""
    k = key(name).key
    if isinstance(k, rsa.RSAPrivateKey):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption())
    assert isinstance(k, ed25519.Ed25519PrivateKey)
    raw = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                          serialization.NoEncryption())
    return base64.b64encode(raw)


def dkim_signed(raw: bytes = MSG) -> bytes:
    """`raw` with the author's DKIM signature (sender.example, our signer)."""
    parsed = parse_message(raw)
    signer = Signer("relaxed/relaxed", ("From", "To", "Subject", "Date", "Message-ID"))
    values = signer.sign([signing_key("rsa", "sender.example")], parsed.headers, lambda: [parsed.body], NOW)
    return b"".join(Header("DKIM-Signature", v).raw() + b"\r\n" for v in values) + raw


NOW = 1_790_000_000.0


Modify = Callable[[bytes], bytes]


def dkimpy_hop(raw: bytes, domain: str, keyname: str = "rsa", arc: str | None = None,
               results: bytes = FIRST_HOP_AR, modify: Modify | None = None) -> bytes:
    """One forwarding hop sealed by dkimpy: its A-R (with `arc`= when given) and its ARC set on top.

    `arc` None: the hop states dkimpy's own verdict on the incoming chain (none on a fresh message).
    `modify` is what the hop changes (a footer, a subject tag) after verifying, before sealing.
    """
    if arc is None:
        arc = theirs(raw) if b"ARC-Seal" in raw else "none"
    raw = modify(raw) if modify else raw
    srv = f"mx.{domain}".encode()
    clause = results + (f"; arc={arc}".encode() if arc != "none" else b"")
    with_ar = b"Authentication-Results: " + srv + b"; " + clause + b"\r\n" + raw
    algorithm = b"ed25519-sha256" if keyname == "ed" else b"rsa-sha256"
    signer = dkim.ARC(with_ar, signature_algorithm=algorithm)
    include = [b"from", b"to", b"subject", b"date", b"message-id"]
    lines = signer.sign(keyname.encode(), domain.encode(), dkimpy_key(keyname), srv,
                        include_headers=include, timestamp=int(NOW))
    assert lines, "dkimpy did not seal"
    return b"".join(lines) + with_ar


def theirs(raw: bytes) -> str:
    """dkimpy's chain status; its None (a chain a seal marked cv=fail) is RFC 8617's fail."""
    cv, _, _ = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    return cv.decode() if cv else "fail"


def ours(raw: bytes, policy: ArcPolicy | None = None, resolver: StaticZone | None = None) -> ArcResult:
    parsed = parse_message(raw)
    return ArcVerifier(resolver or zone(), policy).verify(parsed.headers, lambda: iter([parsed.body]))


def our_hop(raw: bytes, domain: str, keyname: str = "rsa", results: str = FIRST_HOP_AR.decode(),
            modify: Modify | None = None) -> bytes:
    """One forwarding hop sealed by us: our verdict on the chain as cv=, our A-R, our ARC set."""
    from mailwarden.arc.chain import collect
    from mailwarden.arc.seal import ArcSealer

    verdict = ours(raw).result
    cv = {"pass": "pass", "none": "none"}.get(verdict, "fail")
    raw = modify(raw) if modify else raw
    srv = f"mx.{domain}"
    authres = f"{srv}; {results}" + (f"; arc={verdict}" if verdict != "none" else "")
    parsed = parse_message(Header("Authentication-Results", " " + authres).raw() + b"\r\n" + raw)
    sealer = ArcSealer(("From", "To", "Subject", "Date", "Message-ID", "DKIM-Signature"))
    new = sealer.seal(signing_key(keyname, domain), collect(parsed.headers), cv, authres, parsed.headers,
                      lambda: iter([parsed.body]), NOW)
    return b"".join(h.raw() + b"\r\n" for h in [*new, *parsed.headers]) + b"\r\n" + parsed.body


def make_tx(raw: bytes, ip: str = "198.51.100.7", mail_from: str = "<list-bounces@list.example.org>",
            rcpts: tuple[str, ...] = ("<bob@rcpt.example>",), direction: str = "inbound") -> Transaction:
    """A message as the list host's client hands it to us."""
    return transaction(raw, ip=ip, mail_from=mail_from, rcpts=rcpts, helo="mx.list.example.org",
                       direction=Direction(direction))


def runtime(extra: str = "", keydir: Path | None = None) -> Runtime:
    """A runtime over the ARC zone; `keydir` adds [dkim.keys] rsa/ed for list.example.org."""
    text = '[policy]\nauthserv_id = "mx.rcpt.example"\ntrusted_networks = []\n'
    if keydir is not None:
        text += "[dkim]\nrequire_safe_keys = false\n"
        for name in ("rsa", "ed"):
            text += (f'[dkim.keys.{name}]\ndomain = "list.example.org"\nselector = "{name}"\n'
                     f'key_file = "{KEYS / (name + ".key")}"\n')
    return build_runtime_from(text + extra, zones=[ZONE])


def forced_hop(raw: bytes, key: SigningKey, cv: str) -> bytes:
    """A hop sealed by us with `key` and whatever cv= it is told (true or not)."""
    from mailwarden.arc.chain import collect
    from mailwarden.arc.seal import ArcSealer

    parsed = parse_message(raw)
    new = ArcSealer(("From", "Subject")).seal(key, collect(parsed.headers), cv, "mx.t.example; none",
                                              parsed.headers, lambda: iter([parsed.body]), NOW)
    return b"".join(h.raw() + b"\r\n" for h in [*new, *parsed.headers]) + b"\r\n" + parsed.body
