"""Where dry-run reads messages from: .eml files, directories of them, mbox files, Maildirs.

Each message is opened as a stream when its turn comes, never read whole: dry-run reads a
50 MB message the way `serve` receives one, in chunks (see dryrun.read_message).
"""

from __future__ import annotations

import functools
import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast


@dataclass(frozen=True, slots=True)
class Item:
    source: str
    """The path, with `#N` (0-based) for a message inside an mbox or a Maildir key."""
    path: Path
    index: int | None
    opener: Callable[[], IO[bytes]] | None
    """Opens the message for reading (the caller closes it); None when it cannot be read."""
    error: str | None = None


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
            yield Item(name, path, None, None, "no such file or directory")
        elif path.is_dir() and _is_maildir(path):
            yield from _maildir(path)
        elif path.is_dir():
            for file in sorted(path.rglob("*.eml")):
                yield _file(file)
        elif _is_mbox(path):
            yield from _mbox(path)
        else:
            yield _file(path)


def _file(path: Path) -> Item:
    return Item(str(path), path, None, functools.partial(_open_file, path))


# Openers are module functions bound with partial: dry-run's jobs pickle items to other processes.
def _open_file(path: Path) -> IO[bytes]:
    return path.open("rb")


def _open_mbox_message(path: str, key: str) -> IO[bytes]:
    return cast("IO[bytes]", _mbox_box(path).get_file(key))


@functools.lru_cache(maxsize=4)
def _mbox_box(path: str) -> mailbox.mbox:
    """One mbox object (and one scan of the file for its table) per file and process."""
    return mailbox.mbox(path, create=False)


def _mbox(path: Path) -> Iterator[Item]:
    try:
        box = mailbox.mbox(str(path), create=False)
        keys = list(box.keys())
    except (OSError, mailbox.Error) as exc:
        yield Item(str(path), path, None, None, str(exc))
        return
    for i, key in enumerate(keys):
        # The message after its From_ line, read from the mbox file itself (mailbox's own
        # get_bytes reads it whole).
        yield Item(f"{path}#{i}", path, i, functools.partial(_open_mbox_message, str(path), key))


def _maildir(path: Path) -> Iterator[Item]:
    # Read the files directly: a Maildir message is one file in new/ or cur/.
    for sub in ("new", "cur"):
        for file in sorted(p for p in (path / sub).iterdir() if not p.name.startswith(".")):
            yield _file(file)
