"""The transaction: what the MTA told us about one message, as values."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class Header:
    """One logical header as received.

    `value` is everything after the colon exactly as written: its leading whitespace, folds
    joined by "\\n" plus the continuation's own whitespace, and non-UTF-8 bytes carried as
    surrogate escapes (the way pymilter decodes them with P_HDR_LEADSPC).
    """

    name: str
    value: str

    def raw(self) -> bytes:
        """The header as it sits in the message, CRLF line ends, no final CRLF."""
        value = self.value.encode("utf-8", "surrogateescape").replace(b"\n", b"\r\n")
        return self.name.encode("utf-8", "surrogateescape") + b":" + value

    def text(self) -> str:
        """`Name: value` as Postfix header_checks see it: folds joined with "\\n"."""
        return f"{self.name}:{self.value}"

    def unfolded(self) -> str:
        """The value with folds removed and outer whitespace stripped, for parsing."""
        return self.value.replace("\r\n", "").replace("\n", "").strip()


@dataclass(frozen=True, slots=True)
class Connection:
    client_ip: str = ""
    client_port: int = 0
    client_name: str = ""
    helo: str = ""
    macros: Mapping[str, str] = field(default_factory=dict)

    @property
    def daemon_name(self) -> str:
        return self.macros.get("{daemon_name}", "")

    @property
    def auth_user(self) -> str:
        return self.macros.get("{auth_authen}", "")


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str = ""
    mail_params: tuple[str, ...] = ()
    rcpts: tuple[str, ...] = ()
    queue_id: str = ""

    @property
    def sender(self) -> str:
        """MAIL FROM without angle brackets ('' for the null sender)."""
        return strip_brackets(self.mail_from)


def strip_brackets(addr: str) -> str:
    """An envelope address without its angle brackets: `<a@b>` -> `a@b`."""
    addr = addr.strip()
    if addr.startswith("<") and addr.endswith(">"):
        return addr[1:-1]
    return addr


def bracket(addr: str) -> str:
    """An envelope address as Postfix gives it over SMTP, in angle brackets (sendmail gives none)."""
    addr = addr.strip()
    return addr if addr.startswith("<") else f"<{addr}>"


class Body:
    """The message body: chunks in memory up to `spool_threshold` bytes, then a temporary file.

    A 50 MB message must not sit in memory; stages read it in chunks. Small bodies, nearly all
    mail, stay a list of the chunks as received: no copy on write, none on read, and none of
    SpooledTemporaryFile's per-call bookkeeping, which shows on every message.
    """

    CHUNK = 65536

    def __init__(self, spool_threshold: int = 1 << 20) -> None:
        self._threshold = spool_threshold
        self._parts: list[bytes] = []
        self._file: IO[bytes] | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is None:
            self._parts.append(bytes(chunk))
            if self.size <= self._threshold:
                return
            self._file = tempfile.TemporaryFile()
            for part in self._parts:
                self._file.write(part)
            self._parts = []
        else:
            self._file.seek(0, 2)
            self._file.write(chunk)
        # A full spool disk must show here, where the adapter temp-fails the message, not in the
        # write buffer until a stage reads the body (or until close, after the verdict).
        self._file.flush()

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """The body from the start, in chunks of at most CHUNK bytes, at most `limit` in all."""
        left = self.size if limit is None else min(limit, self.size)
        if self._file is None:
            for part in self._parts:
                if 0 < len(part) <= min(self.CHUNK, left):  # as received: no copy
                    left -= len(part)
                    yield part
                    continue
                for i in range(0, len(part), self.CHUNK):
                    if left <= 0:
                        return
                    piece = part[i:i + min(self.CHUNK, left)]
                    left -= len(piece)
                    yield piece
            return
        self._file.seek(0)
        while left > 0:
            data = self._file.read(min(self.CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data

    def read(self, limit: int | None = None) -> bytes:
        return b"".join(self.chunks(limit))

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        self._parts = []
        if self._file is not None:
            # A write that failed leaves its bytes in the buffer, and close retries them; the
            # descriptor is closed all the same, and the body is not wanted any more.
            with contextlib.suppress(OSError):
                self._file.close()

    @classmethod
    def from_bytes(cls, data: bytes, spool_threshold: int = 1 << 20) -> Body:
        body = cls(spool_threshold)
        body.write(data)
        return body


@dataclass(slots=True)
class Message:
    """Headers and body as they will be delivered, edited in place by the pipeline.

    `headers` are the headers a milter sees. `mta_header` is the receiving MTA's own Received
    header, which milters never see; `above` holds headers inserted above it (insheader index 0).
    `delivery` holds what delivery agents added later on top (Return-Path, Delivered-To), which
    dry-run meets in archived mail and a milter never sees.
    """

    headers: list[Header]
    body: Body
    mta_header: Header | None = None
    above: list[Header] = field(default_factory=list)
    delivery: list[Header] = field(default_factory=list)

    def get_all(self, name: str) -> list[Header]:
        lname = name.lower()
        return [h for h in self.headers if h.name.lower() == lname]

    def get(self, name: str) -> Header | None:
        found = self.get_all(name)
        return found[0] if found else None

    def delivered_headers(self) -> list[Header]:
        """Every header in delivery order, the MTA's own included."""
        mta = [self.mta_header] if self.mta_header is not None else []
        return [*self.delivery, *self.above, *mta, *self.headers]

    def to_bytes(self) -> bytes:
        head = b"".join(h.raw() + b"\r\n" for h in self.delivered_headers())
        return head + b"\r\n" + self.body.read()


@dataclass(slots=True)
class Transaction:
    """One message, from connect to end of message."""

    connection: Connection
    envelope: Envelope
    message: Message
    direction: Direction = Direction.INBOUND
    received_headers: tuple[Header, ...] = ()
    """The headers exactly as received, before any edit (hopcount counts these)."""

    def __post_init__(self) -> None:
        if not self.received_headers:
            self.received_headers = tuple(self.message.headers)
