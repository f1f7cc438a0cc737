"""Building what tests feed the core: transactions and runtimes, one way for every test directory.

`transaction()` makes a Transaction as a milter would see it: headers given as text (one header a
line, continuation lines start with a space or tab), as Header objects, or a whole raw message as
bytes (headers and body). `runtime()` builds the real runtime from config text, over static zones.
Every argument has a default, so a test names only what it is about.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mailwarden.bootstrap import Runtime, build_runtime
from mailwarden.config import parse
from mailwarden.core.model import Body, Connection, Direction, Envelope, Header, Message, Transaction
from mailwarden.core.wire import parse_message

MTA_HEADER = Header("Received", " from mta by us")
"""Stands in for the receiving MTA's own Received header, which milters never see."""


def parse_headers(text: str) -> list[Header]:
    """`Name: value` lines as headers; a line starting with space or tab continues the one above."""
    found: list[Header] = []
    for line in text.strip("\n").split("\n"):
        if line[:1] in (" ", "\t") and found:
            last = found[-1]
            found[-1] = Header(last.name, last.value + "\n" + line)
        else:
            name, _, value = line.partition(":")
            found.append(Header(name, value))
    return found


def transaction(
    headers: str | bytes | Iterable[Header] = "From: a@example.com\nSubject: hi",
    *,
    body: bytes = b"hello\r\n",
    mail_from: str = "<a@example.com>",
    rcpts: Iterable[str] = ("<b@rcpt.example>",),
    ip: str = "192.0.2.1",
    port: int = 25000,
    client_name: str = "unknown",
    helo: str = "mail.example.com",
    direction: Direction = Direction.INBOUND,
    macros: Mapping[str, str] | None = None,
    queue_id: str = "QID1",
    mta_header: Header | None = MTA_HEADER,
) -> Transaction:
    """A transaction; `headers` as bytes is a whole raw message, whose body replaces `body`."""
    if isinstance(headers, bytes):
        parsed = parse_message(headers)
        hs, body = parsed.headers, parsed.body
    else:
        hs = parse_headers(headers) if isinstance(headers, str) else list(headers)
    return Transaction(
        Connection(ip, port, client_name, helo, dict(macros or {})),
        Envelope(mail_from, (), tuple(rcpts), queue_id),
        Message(hs, Body.from_bytes(body), mta_header=mta_header),
        direction,
    )


def runtime(
    config: str = "",
    *,
    zones: Sequence[str | Path] = (),
    rules_dir: Path | None = None,
    now: float | None = None,
    draw: float | None = None,
) -> Runtime:
    """The real runtime for config text: `zones` answer DNS, `now` fixes the clock, `draw` the pct=
    sampling draw (0.0: every message is sampled)."""
    clock = time.time if now is None else (lambda: now)
    rand = random.random if draw is None else (lambda: draw)
    return build_runtime(parse(config), zones=[str(z) for z in zones], rules_dir=rules_dir, clock=clock,
                         rand=rand)
