"""The body as Postfix's mime_state hands it to the checks: part headers, nested headers, lines.

Part headers of a multipart go to mime_header_checks; the headers of an attached message/rfc822
to nested_header_checks, except the six MIME headers, which always go to mime_header_checks
(HDR_OPT_MIME). Every other line, boundaries included, goes to body_checks, at most
`size_limit` bytes per part (body_checks_size_limit), long lines in `line_limit` pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MIME_HEADERS = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-description",
        "content-id",
        "mime-version",
    }
)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"]*)"|([^\s;"]+))', re.IGNORECASE)
_TYPE = re.compile(rb"^\s*([!-~]+?)/([!-~]+?)\s*(?:;|$)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Item:
    klass: str
    text: bytes
    what: str
    """'header' or 'body', for Postfix's log line."""


def content_type(value: bytes) -> tuple[str, bytes | None]:
    """('type/subtype' lowercased, boundary or None) of a Content-Type value."""
    m = _TYPE.match(value.replace(b"\n", b" "))
    ctype = (m.group(1) + b"/" + m.group(2)).decode("ascii", "replace").lower() if m else "text/plain"
    b = _BOUNDARY.search(value.replace(b"\n", b" "))
    boundary = (b.group(1) if b.group(1) is not None else b.group(2)) if b else None
    return ctype, boundary


def body_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Physical lines without their CRLF / LF."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if rest:
        yield rest[:-1] if rest.endswith(b"\r") else rest


def is_header_line(line: bytes) -> bool:
    from mailwarden.rules.postmap import is_header

    return is_header(line)


def walk(
    top_content_type: bytes | None, lines: Iterable[bytes], size_limit: int, line_limit: int
) -> Iterator[Item]:
    BODY, PART, NESTED = 0, 1, 2
    boundaries: list[bytes] = []
    state = BODY
    ctype, boundary = content_type(top_content_type) if top_content_type is not None else ("text/plain", None)
    if ctype.startswith("multipart/") and boundary:
        boundaries.append(boundary)
    elif ctype == "message/rfc822":
        state = NESTED
    headers: list[bytes] = []
    part_type: bytes | None = None
    used = 0

    def flush() -> Iterator[Item]:
        nonlocal part_type
        for text in headers:
            name = text.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
            if name == "content-type":
                part_type = text.split(b":", 1)[1]
            if state == PART or name in MIME_HEADERS:
                yield Item("mime_header_checks", text, "header")
            else:
                yield Item("nested_header_checks", text, "header")
        headers.clear()

    def after_headers() -> int:
        nonlocal part_type
        t, b = content_type(part_type) if part_type is not None else ("text/plain", None)
        part_type = None
        if t.startswith("multipart/") and b:
            boundaries.append(b)
            return BODY
        if t == "message/rfc822":
            return NESTED
        return BODY

    for line in lines:
        if state != BODY:
            if headers and line[:1] in (b" ", b"\t"):
                headers[-1] += b"\n" + line
                continue
            if is_header_line(line):
                headers.append(line)
                continue
            yield from flush()
            state = after_headers()
            used = 0
            if line == b"":
                continue
        if line.startswith(b"--") and boundaries:
            for depth in range(len(boundaries) - 1, -1, -1):
                bnd = boundaries[depth]
                if line[2:].startswith(bnd):
                    tail = line[2 + len(bnd) :]
                    del boundaries[depth + 1 :]
                    if tail.startswith(b"--"):
                        boundaries.pop()
                        state = BODY
                    else:
                        state = PART
                    used = 0
                    yield Item("body_checks", line, "body")
                    break
            else:
                depth = -1
            if depth >= 0:
                continue
        if used >= size_limit:
            if not boundaries:
                break  # no part can follow: the rest of the body is never checked
            continue
        used += len(line) + 1
        if len(line) <= line_limit:
            yield Item("body_checks", line, "body")
        else:
            for i in range(0, len(line), line_limit):
                yield Item("body_checks", line[i : i + line_limit], "body")
    if state != BODY and headers:
        yield from flush()
