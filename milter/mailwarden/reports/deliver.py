"""Getting reports to their destinations: rua=/ruf= URIs, external destination verification
(RFC 7489 section 7.1), size limits, the report mail, DKIM signing, SMTP.

Only mailto: URIs are used (RFC 7489 section 7.2.1.2 makes mailto the one every receiver
supports); others are skipped with a note.
"""

from __future__ import annotations

import email.utils
import re
import smtplib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP

from mailwarden.config import Config
from mailwarden.core.ports import Resolver
from mailwarden.dmarc.record import is_dmarc
from mailwarden.errors import DnsTempError

_SIZE = re.compile(r"!(\d+)([kmgt]?)$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class Destination:
    uri: str
    address: str
    limit: int = 0  # bytes of the (gzipped) report; 0: no limit

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower().rstrip(".")


def parse_uri(uri: str) -> Destination | None:
    """A mailto: URI with an optional !size (powers of two: 10k = 10240 bytes); None otherwise."""
    text = uri.strip()
    limit = 0
    m = _SIZE.search(text)
    if m:
        limit = int(m.group(1)) * _UNITS[m.group(2).lower()]
        text = text[:m.start()]
    scheme, _, rest = text.partition(":")
    if scheme.lower() != "mailto":
        return None
    address = urllib.parse.unquote(rest.partition("?")[0]).strip()
    if address.count("@") != 1 or not all(address.split("@")):
        return None
    return Destination(uri.strip(), address, limit)


def destinations(uris: str) -> tuple[list[Destination], list[str]]:
    """The mailto: destinations of a comma-separated URI list, and notes on the rest."""
    found, notes = [], []
    for uri in filter(None, (u.strip() for u in uris.split(","))):
        dest = parse_uri(uri)
        if dest is None:
            notes.append(f"skipped {uri}: only mailto: destinations are supported")
        else:
            found.append(dest)
    return found, notes


def authorized(resolver: Resolver, policy_domain: str, dest: Destination,
               org_of: Callable[[str], str]) -> bool:
    """Whether reports about `policy_domain` may go to `dest` (RFC 7489 section 7.1): always
    within the same organizational domain, else only when the destination's domain publishes
    <policy-domain>._report._dmarc.<destination-domain> TXT "v=DMARC1...".

    Raises DnsTempError when that cannot be known now."""
    if org_of(dest.domain) == org_of(policy_domain):
        return True
    name = f"{policy_domain}._report._dmarc.{dest.domain}"
    return any(is_dmarc(txt) for txt in resolver.txt(name))


@dataclass(frozen=True)
class Sender:
    """Who reports come from, and how they leave: SMTP to the relay, signed when we sign."""

    from_address: str
    relay: str
    sign: Callable[[bytes], bytes] = lambda data: data

    def message(self, to: str, subject: str, text: str,
                attachment: tuple[str, str, bytes] | None = None) -> bytes:
        """The report mail: a short text part and the report (filename, MIME type, bytes)."""
        msg = EmailMessage(policy=SMTP)
        msg["From"] = self.from_address
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = email.utils.make_msgid(domain=self.from_address.rpartition("@")[2])
        msg.set_content(text)
        if attachment is not None:
            name, mime, data = attachment
            maintype, _, subtype = mime.partition("/")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        return self.sign(msg.as_bytes())

    def send(self, to: str, data: bytes) -> None:
        """Hand one message to the relay; raises OSError or smtplib.SMTPException."""
        host, _, port = self.relay.rpartition(":")
        with smtplib.SMTP(host.strip("[]"), int(port), timeout=60) as smtp:
            smtp.sendmail(self.from_address, [to], data)


def dkim_signer(config: Config, resolver: Resolver) -> Callable[[bytes], bytes]:
    """Sign report mail with [dkim]'s own signing rules (as the milter signs outbound mail):
    unchanged when no rule signs for the From domain."""
    from mailwarden.buildenv import BuildEnv
    from mailwarden.core.decisions import Outcome
    from mailwarden.core.edits import apply_edits
    from mailwarden.core.model import Body, Connection, Direction, Envelope, Message, Transaction
    from mailwarden.core.wire import parse_message
    from mailwarden.dkim.build import dkim_sign

    if not config.dkim.sign:
        return lambda data: data
    stage = dkim_sign(BuildEnv(config, resolver, "", None))

    def sign(data: bytes) -> bytes:
        parsed = parse_message(data)
        tx = Transaction(Connection(), Envelope(), Message(parsed.headers, Body.from_bytes(parsed.body)),
                         Direction.OUTBOUND)
        apply_edits(tx, stage.run(tx, Outcome()).edits)
        return tx.message.to_bytes()

    return sign


def checked(resolver: Resolver, policy_domain: str, dests: list[Destination],
            org_of: Callable[[str], str]) -> tuple[list[Destination], list[str], bool]:
    """(authorized destinations, notes, whether some could not be checked now)."""
    ok, notes, unsure = [], [], False
    for dest in dests:
        try:
            if authorized(resolver, policy_domain, dest, org_of):
                ok.append(dest)
            else:
                notes.append(f"skipped {dest.uri}: {dest.domain} does not accept reports for "
                             f"{policy_domain} (no {policy_domain}._report._dmarc.{dest.domain} record)")
        except DnsTempError as exc:
            unsure = True
            notes.append(f"cannot verify {dest.uri} now: {exc}")
    return ok, notes, unsure
