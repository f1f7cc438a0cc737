"""Deriving the SMTP envelope of archived mail from its headers, for dry-run.

The topmost Received header was written by the receiving MTA (Postfix/Sendmail form
`from HELO (NAME [IP]) by HOST ... for <rcpt>; date`). It gives the client address, HELO and
recipient, and it is treated as the MTA's own header: counted for hopcount, hidden from the
stages, exactly as a milter would see the message. Return-Path gives MAIL FROM; Delivered-To
and X-Original-To give the recipients (they are hidden too: delivery agents add them later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailwarden.core.model import Header

_RECEIVED = re.compile(
    r"""^\s*from\s+(?P<helo>\S+)\s+
        \((?:(?P<name>[^\s\[\]()]+)\s+)?\[(?:IPv6:)?(?P<ip>[0-9A-Fa-f:.]+)\]\)
        (?P<rest>.*)$""",
    re.X | re.S,
)
_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+)>?", re.I)
_ANGLE = re.compile(r"<([^<>]*)>")

DELIVERY_HEADERS = frozenset({"return-path", "delivered-to", "x-original-to"})


@dataclass(slots=True)
class Derived:
    client_ip: str = ""
    client_name: str = ""
    helo: str = ""
    mail_from: str | None = None
    rcpts: list[str] = field(default_factory=list)
    mta_header: Header | None = None
    delivery_headers: list[Header] = field(default_factory=list)
    visible: list[Header] = field(default_factory=list)


def derive(headers: list[Header]) -> Derived:
    """Split `headers` into the MTA's own/delivery headers and those a milter would see."""
    out = Derived()
    i = 0
    # Delivery agents put Return-Path, Delivered-To and X-Original-To above the MTA's Received.
    while i < len(headers) and headers[i].name.lower() in DELIVERY_HEADERS:
        out.delivery_headers.append(headers[i])
        i += 1
    if i < len(headers) and headers[i].name.lower() == "received":
        match = _RECEIVED.match(headers[i].unfolded())
        if match:
            out.mta_header = headers[i]
            out.helo = match.group("helo")
            out.client_name = match.group("name") or ""
            out.client_ip = match.group("ip")
            rcpt = _FOR.search(match.group("rest"))
            if rcpt:
                out.rcpts.append(rcpt.group(1))
            i += 1
    out.visible = headers[i:]
    for h in out.delivery_headers:
        value = h.unfolded()
        if h.name.lower() == "return-path":
            found = _ANGLE.search(value)
            out.mail_from = found.group(1) if found else value
        else:
            addr = _ANGLE.sub(r"\1", value).strip()
            if addr and addr not in out.rcpts:
                out.rcpts.append(addr)
    if out.mta_header is None:
        # No MTA header: nothing is hidden; delivery headers stay visible as they are.
        out.visible = headers
        out.delivery_headers = []
    return out
