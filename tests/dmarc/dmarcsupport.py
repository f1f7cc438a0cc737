"""Helpers for the SPF/DMARC tests: transactions from text, pipelines over a static zone."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mailwarden.core.model import Body, Connection, Direction, Envelope, Header, Message, Transaction

DATA = Path(__file__).resolve().parents[1] / "data" / "dmarc"


def parse_headers(text: str) -> list[Header]:
    headers: list[Header] = []
    for line in text.strip("\n").split("\n"):
        if line[:1] in (" ", "\t") and headers:
            last = headers[-1]
            headers[-1] = Header(last.name, last.value + "\n" + line)
        else:
            name, _, value = line.partition(":")
            headers.append(Header(name, value))
    return headers


def make_tx(
    headers: str | Iterable[Header] = "From: a@example.com\nSubject: hi",
    *,
    mail_from: str = "<a@example.com>",
    rcpts: Iterable[str] = ("<b@rcpt.example>",),
    ip: str = "192.0.2.1",
    helo: str = "mail.example.com",
    direction: Direction = Direction.INBOUND,
    body: bytes = b"hello\r\n",
    macros: dict[str, str] | None = None,
) -> Transaction:
    hs = parse_headers(headers) if isinstance(headers, str) else list(headers)
    return Transaction(
        Connection(ip, 25000, "unknown", helo, macros or {}),
        Envelope(mail_from, (), tuple(rcpts), "QID1"),
        Message(hs, Body.from_bytes(body), mta_header=Header("Received", " from mta by us")),
        direction,
    )
