"""The lookup keys `postmap -hq -` and `postmap -bq -` take from a message on standard input.

postmap reads without MIME processing: the header block is every line up to the first line that
is neither a header nor a continuation; each logical header (continuations joined with "\\n",
their whitespace kept) is one key. Every line from there on, the separating empty line
included, is a body key. Carriage returns stay part of the key, as in postmap.
"""

from __future__ import annotations

from collections.abc import Iterator


def is_header(line: bytes) -> bool:
    """is_header_buf(): printable ASCII name, optional blanks, then a colon."""
    state = 0  # 0 init, 1 in name, 2 blanks after name
    for c in line:
        if c == 0x3A:
            return state != 0
        if c in (0x20, 0x09):
            if state == 1:
                state = 2
                continue
            return False
        if c == 0 or c > 126 or c < 32:
            return False
        if state == 2:
            return False
        state = 1
    return False


def split_message(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """(header keys, body lines) of a message, as postmap would look them up."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    headers: list[bytes] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if headers and line[:1] in (b" ", b"\t"):
            headers[-1] += b"\n" + line
        elif is_header(line):
            # mime_state drops the (obsolete) blanks between the name and the colon.
            colon = line.index(b":")
            headers.append(line[:colon].rstrip(b" \t") + line[colon:])
        else:
            break
        i += 1
    return headers, lines[i:]


def header_keys(data: bytes) -> Iterator[bytes]:
    yield from split_message(data)[0]


def body_keys(data: bytes) -> Iterator[bytes]:
    yield from split_message(data)[1]
