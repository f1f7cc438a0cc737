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
    return _Walker(top_content_type, size_limit, line_limit).run(lines)


BODY, PART, NESTED = 0, 1, 2


class _Walker:
    """mime_state's walk over the body: in a part's or nested message's headers, or in a body."""

    def __init__(self, top_content_type: bytes | None, size_limit: int, line_limit: int) -> None:
        self.size_limit = size_limit
        self.line_limit = line_limit
        self.boundaries: list[bytes] = []
        self.state = BODY
        top = top_content_type
        ctype, boundary = content_type(top) if top is not None else ("text/plain", None)
        if ctype.startswith("multipart/") and boundary:
            self.boundaries.append(boundary)
        elif ctype == "message/rfc822":
            self.state = NESTED
        self.headers: list[bytes] = []
        self.part_type: bytes | None = None
        self.used = 0
        """Bytes of the current part given to body_checks so far."""

    def run(self, lines: Iterable[bytes]) -> Iterator[Item]:
        for line in lines:
            if self.state != BODY:
                if self.header_line(line):
                    continue
                yield from self.end_headers()
                if line == b"":
                    continue
            if self.boundaries and line.startswith(b"--") and self.boundary(line):
                yield Item("body_checks", line, "body")
                continue
            if self.used >= self.size_limit:
                if not self.boundaries:
                    break  # no part can follow: the rest of the body is never checked
                continue
            yield from self.body_line(line)
        if self.state != BODY and self.headers:
            yield from self.flush()

    def header_line(self, line: bytes) -> bool:
        """Take a header or continuation line of the headers being read; False if it is not one."""
        if self.headers and line[:1] in (b" ", b"\t"):
            self.headers[-1] += b"\n" + line
            return True
        if is_header_line(line):
            self.headers.append(line)
            return True
        return False

    def end_headers(self) -> Iterator[Item]:
        yield from self.flush()
        t, b = content_type(self.part_type) if self.part_type is not None else ("text/plain", None)
        self.part_type = None
        self.state = BODY
        if t.startswith("multipart/") and b:
            self.boundaries.append(b)
        elif t == "message/rfc822":
            self.state = NESTED
        self.used = 0

    def flush(self) -> Iterator[Item]:
        for text in self.headers:
            name = text.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
            if name == "content-type":
                self.part_type = text.split(b":", 1)[1]
            if self.state == PART or name in MIME_HEADERS:
                yield Item("mime_header_checks", text, "header")
            else:
                yield Item("nested_header_checks", text, "header")
        self.headers.clear()

    def boundary(self, line: bytes) -> bool:
        """Whether `line` is a boundary of an enclosing multipart (innermost first); enter its part."""
        for depth in range(len(self.boundaries) - 1, -1, -1):
            bnd = self.boundaries[depth]
            if line[2:].startswith(bnd):
                del self.boundaries[depth + 1 :]
                if line[2 + len(bnd) :].startswith(b"--"):
                    self.boundaries.pop()
                    self.state = BODY
                else:
                    self.state = PART
                self.used = 0
                return True
        return False

    def body_line(self, line: bytes) -> Iterator[Item]:
        self.used += len(line) + 1
        if len(line) <= self.line_limit:
            yield Item("body_checks", line, "body")
            return
        for i in range(0, len(line), self.line_limit):
            yield Item("body_checks", line[i : i + self.line_limit], "body")
