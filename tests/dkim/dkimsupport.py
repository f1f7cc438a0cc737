"""Shared helpers for the DKIM tests: test keys, the static zone, signing and verifying bytes."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from mailwarden.core.auth import DkimResult
from mailwarden.core.model import Header, Transaction
from mailwarden.core.wire import parse_message
from mailwarden.dkim.keys import PrivateKey, load_private_key
from mailwarden.dkim.sign import Signer, SigningKey
from mailwarden.dkim.verify import Verifier, VerifyPolicy
from mailwarden.resolver.static import StaticZone

DATA = Path(__file__).resolve().parent.parent / "data" / "dkim"
ZONE = DATA / "test.zone"
NOW = float(int(time.time()))  # dkimpy signs with the real clock

MSG = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: quarterly  report\r\n"
    b"\tfolded subject\r\n"
    b"Date: Sun, 22 Nov 2026 03:00:00 +0000\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"X-Unsigned: yes\r\n"
    b"\r\n"
    b"Hello  Bob, \r\n"
    b"\tthe numbers are in.\r\n"
    b"\r\n"
    b"-- \r\n"
    b"Alice\r\n"
    b"\r\n\r\n"
)

HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Cc", "Reply-To")
OVERSIGN = ("From", "To", "Subject", "Date", "Message-ID", "Cc", "Reply-To")


def key(name: str) -> PrivateKey:
    return load_private_key(DATA / f"{name}.key", require_safe=False)


def signing_key(name: str, selector: str | None = None, domain: str = "example.com") -> SigningKey:
    return SigningKey(name, domain, selector or name, key(name))


def zone() -> StaticZone:
    return StaticZone.from_files([ZONE])


def safe_keys(dest: Path) -> Path:
    """Copies of the test keys with mode 0600 (git does not keep modes)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in DATA.glob("*.key"):
        shutil.copy(f, dest / f.name)
        (dest / f.name).chmod(0o600)
    return dest


def to_bytes(headers: Sequence[Header], body: bytes) -> bytes:
    return b"".join(h.raw() + b"\r\n" for h in headers) + b"\r\n" + body


def sign(raw: bytes, keys: Sequence[SigningKey], canon: str = "relaxed/relaxed", now: float = NOW,
         headers: Sequence[str] = HEADERS, oversign: Sequence[str] = OVERSIGN) -> bytes:
    parsed = parse_message(raw)
    signer = Signer(canon, tuple(headers), tuple(oversign))
    values = signer.sign(keys, parsed.headers, lambda: [parsed.body], now)
    return to_bytes([Header("DKIM-Signature", v) for v in values] + parsed.headers, parsed.body)


def verify(raw: bytes, now: float | None = None, policy: VerifyPolicy | None = None,
           resolver: StaticZone | None = None) -> tuple[DkimResult, ...]:
    """Verified at `now`, by default the real time: mail signed by a running milter carries the
    real clock in t=, and a slow suite may reach it after NOW's allowed drift has run out."""
    parsed = parse_message(raw)
    at = time.time() if now is None else now
    verifier = Verifier(resolver or zone(), lambda: at, policy or VerifyPolicy())
    return verifier.verify(parsed.headers, lambda: iter([parsed.body]))


def results(raw: bytes, **kw: object) -> list[str]:
    return [r.result for r in verify(raw, **kw)]  # type: ignore[arg-type]


def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes:
    """dkimpy's DNS hook answered from the same static zone."""
    text = name.decode() if isinstance(name, bytes) else name
    return b"".join(zone().txt(text))


def opendkim_verify(raw: bytes, tmp: Path) -> str:
    """OpenDKIM's verdict on `raw` (opendkim -t, keys from TestPublicKeys): its A-R text."""
    z = zone()
    with open(tmp / "keys.txt", "w") as f:
        for sel, dom in (("rsa", "example.com"), ("ed", "example.com"), ("other", "example.net")):
            f.write(f"{sel}._domainkey.{dom} " + b"".join(z.txt(f"{sel}._domainkey.{dom}")).decode() + "\n")
    (tmp / "opendkim.conf").write_text(
        f"Mode v\nTestPublicKeys {tmp / 'keys.txt'}\nSyslog no\nAuthservID test\nMinimumKeyBits 1024\n"
    )
    (tmp / "msg.eml").write_bytes(raw)
    proc = subprocess.run(["opendkim", "-x", str(tmp / "opendkim.conf"), "-vvv", "-t", str(tmp / "msg.eml")],
                          capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    return out[out.find("hname='Authentication-Results'"):]


def delivered(tx: Transaction) -> bytes:
    """The message as Postfix would deliver it, without its own Received header."""
    return to_bytes([*tx.message.above, *tx.message.headers], tx.message.body.read())


def sign_config(keydir: Path, extra: str = "", rules: str | None = None) -> str:
    default_rules = '[[dkim.sign]]\nmatch = ["example.com", "*.example.com"]\nkeys = ["rsa", "ed"]\n'
    return (
        f'[dkim.keys.rsa]\ndomain = "example.com"\nselector = "rsa"\nkey_file = "{keydir}/rsa.key"\n'
        f'[dkim.keys.ed]\ndomain = "example.com"\nselector = "ed"\nkey_file = "{keydir}/ed.key"\n'
        f'[dkim.keys.other]\ndomain = "example.net"\nselector = "other"\nkey_file = "{keydir}/other.key"\n'
        + (default_rules if rules is None else rules) + extra
    )


class OpenDkimMilter:
    """opendkim(8) running as a milter on a unix socket in `base`, signing with tests' rsa.key."""

    def __init__(self, base: Path, canon: str = "relaxed/relaxed", mode: str = "s") -> None:
        self.base = base
        self.socket = base / "opendkim.sock"
        keys = safe_keys(base / "odkkeys")
        conf = base / "opendkim.conf"
        conf.write_text(
            f"Mode {mode}\nSocket local:{self.socket}\nBackground no\nSyslog no\n"
            f"Domain example.com\nSelector rsa\nKeyFile {keys / 'rsa.key'}\n"
            f"Canonicalization {canon}\nOversignHeaders From\nInternalHosts 127.0.0.1\n"
            f"PidFile {base / 'opendkim.pid'}\nRequireSafeKeys false\n"
        )
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def spec(self) -> str:
        return f"unix:{self.socket}"

    def start(self) -> OpenDkimMilter:
        self.proc = subprocess.Popen(["opendkim", "-f", "-x", str(self.conf)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"opendkim did not start: {out}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # libmilter lingers for seconds after SIGTERM; nothing of it needs a clean exit here.
            self.proc.kill()
            self.proc.wait()
