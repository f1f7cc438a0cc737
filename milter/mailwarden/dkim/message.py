"""Split RFC 5322 message bytes into headers and body, for the CLI and tests."""

from __future__ import annotations

import re

from mailwarden.core.model import Header

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def parse_message(data: bytes) -> tuple[list[Header], bytes]:
    """Headers as a milter sees them (value after the colon, folds joined with "\\n") and the body."""
    m = _HEADER_END.search(data)
    if data.startswith((b"\r\n", b"\n")):
        head, body = b"", data[2 if data.startswith(b"\r\n") else 1:]
    elif m is None:
        head, body = data, b""
    else:
        head, body = data[: m.start()], data[m.end():]
    headers: list[Header] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and headers:
            last = headers[-1]
            headers[-1] = Header(last.name, last.value + "\n" + line.decode("utf-8", "surrogateescape"))
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            continue  # not a header line (e.g. an mbox "From " line)
        headers.append(Header(name.decode("utf-8", "surrogateescape"),
                              value.decode("utf-8", "surrogateescape")))
    return headers, body


def format_message(headers: list[Header], body: bytes) -> bytes:
    return b"".join(h.raw() + b"\r\n" for h in headers) + b"\r\n" + body
