"""Where dry-run reads messages from: .eml files, directories of them, mbox files, Maildirs.

Each message is opened as a stream when its turn comes, never read whole: dry-run reads a
50 MB message the way `serve` receives one, in chunks (see dryrun.read_message).

An Item names a message (a path, and for an mbox the byte span of the message in it): dry-run's
jobs hand items to worker processes, which open and read the messages themselves, so an item is a
small tuple of plain values, cheap to pickle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple, cast

SCAN_CHUNK = 1 << 20


class Item(NamedTuple):
    source: str
    """The path, with `#N` (0-based) for a message inside an mbox."""
    path: str
    number: int | None = None
    """The message's number in its mbox (0-based)."""
    span: tuple[int, int] | None = None
    """In an mbox: where the message's From_ line starts, and where the message ends."""
    error: str | None = None
    """Why the message cannot be read (it is not opened then)."""

    def open(self) -> IO[bytes]:
        """The message for reading, without an mbox's From_ line (the caller closes it)."""
        if self.error is not None:
            raise OSError(self.error)
        stream = open(self.path, "rb")  # closed by the caller, or below
        if self.span is None:
            return stream
        try:
            start, stop = self.span
            stream.seek(start)
            stream.readline()  # the From_ line
            return cast("IO[bytes]", _Slice(stream, stop))
        except BaseException:
            stream.close()
            raise


class _Slice:
    """A file read from its position up to `stop`, as mailbox reads an mbox message; closing it
    closes the file."""

    def __init__(self, stream: IO[bytes], stop: int) -> None:
        self._stream = stream
        self._left = max(stop - stream.tell(), 0)

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _Slice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _is_mbox(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def iter_items(paths: list[str]) -> Iterator[Item]:
    for name in paths:
        path = Path(name)
        if not path.exists():
            yield Item(name, str(path), error="no such file or directory")
        elif path.is_dir() and _is_maildir(path):
            yield from _maildir(path)
        elif path.is_dir():
            for file in sorted(path.rglob("*.eml")):
                yield Item(str(file), str(file))
        elif _is_mbox(path):
            yield from _mbox(path)
        else:
            yield Item(str(path), str(path))


def _mbox(path: Path) -> Iterator[Item]:
    name = str(path)
    try:
        with path.open("rb") as fh:
            for i, span in enumerate(mbox_spans(fh)):
                yield Item(f"{name}#{i}", name, i, span)
    except OSError as exc:
        yield Item(name, name, error=str(exc))


def _from_lines(data: bytes, end: int) -> Iterator[int]:
    """Where the lines that begin with `From ` start in data[:end] (data[0] starts a line)."""
    if data.startswith(b"From ", 0, end):
        yield 0
    at = data.find(b"\nFrom ", 0, end)
    while at >= 0:
        yield at + 1
        at = data.find(b"\nFrom ", at + 1, end)


def mbox_spans(fh: IO[bytes], chunk: int = SCAN_CHUNK) -> Iterator[tuple[int, int]]:
    """(start, stop) of each message in an mbox, as mailbox.mbox's table of contents has them,
    found as the file is read: a message starts at each line beginning with `From `, and ends
    where the next one starts, less the one blank line before it (mailbox reads the file line by
    line in Python; this searches large reads for them)."""
    base = 0  # the file offset of data[0], always the start of a line
    carry = b""  # the unfinished last line of the previous read
    empty_before = False  # whether the line before data[0] is a bare "\n"
    start: int | None = None
    while True:
        more = fh.read(chunk)
        data = carry + more
        end = data.rfind(b"\n") + 1 if more else len(data)  # whole lines only, but at the end
        for at in _from_lines(data, end):
            if start is not None:
                blank = empty_before if at == 0 else at == 1 or data[at - 2] == 0x0A
                yield start, base + at - blank
            start = base + at
        if not more:
            break
        if end:  # the last whole line read is bare when the line before it ends just before it
            empty_before = end == 1 or data[end - 2] == 0x0A
        carry = data[end:]
        base += end
    if start is not None:  # the end of the file, less a last bare line
        yield start, base + len(data) - (empty_before and not data)


def _maildir(path: Path) -> Iterator[Item]:
    # Read the files directly: a Maildir message is one file in new/ or cur/.
    for sub in ("new", "cur"):
        folder = str(path / sub)
        try:
            names = os.listdir(folder)
        except OSError as exc:  # one line for this folder; the rest of the input goes on
            yield Item(folder, folder, error=exc.strerror or str(exc))
            continue
        for name in sorted(n for n in names if not n.startswith(".")):
            file = os.path.join(folder, name)
            yield Item(file, file)
