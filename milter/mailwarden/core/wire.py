"""Message bytes to headers and body, giving exactly what a milter sees from Postfix.

With P_HDR_LEADSPC, a header value is everything after the colon, folds joined with "\\n" plus the
continuation's own whitespace. Body lines end in CRLF, as Postfix hands them to milters, the last
one too: over SMTP a body always ends in a line end (the client puts one before the final dot),
and Postfix's sendmail(1) ends a last line that has none, so an archived file without one is read
as Postfix would have delivered it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.core.model import Header

_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
_FIELD_NAME = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    headers: list[Header]
    body: bytes
    crlf: bool
    """Whether the input used CRLF line ends (so output can be written back the same way)."""


def parse_message(data: bytes) -> ParsedMessage:
    """Split raw message bytes. A line that is neither a header nor a continuation ends the
    headers, as in Postfix's cleanup: it becomes the first body line."""
    crlf = b"\r\n" in data[:4096]
    headers: list[Header] = []
    raw_name: bytes | None = None
    raw_value: list[bytes] = []
    pos = 0
    length = len(data)

    def flush() -> None:
        if raw_name is not None:
            name = raw_name.decode("utf-8", "surrogateescape")
            value = b"\n".join(raw_value).decode("utf-8", "surrogateescape")
            headers.append(Header(name, value))

    while pos < length:
        match = _LINE.match(data, pos)
        assert match is not None
        line = match.group()
        stripped = line.rstrip(b"\n").rstrip(b"\r")
        if not stripped:
            pos = match.end()
            break
        if stripped[:1] in (b" ", b"\t") and raw_name is not None:
            raw_value.append(stripped)
        else:
            field = _FIELD_NAME.match(stripped)
            if field is None:
                break
            flush()
            colon = stripped.index(b":")
            raw_name = stripped[:colon].rstrip(b" \t")
            raw_value = [stripped[colon + 1 :]]
        pos = match.end()
    flush()
    body = data[pos:]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return ParsedMessage(headers, to_crlf(body), crlf)


def to_crlf(data: bytes) -> bytes:
    """Normalise every line end to CRLF (bare LF and CRLF alike), as Postfix does for milters;
    bare CRs before a line end go, as Postfix's smtp_get() drops them."""
    if b"\n" not in data:
        return data
    return re.sub(rb"\r*\n", b"\r\n", data)


def to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")
