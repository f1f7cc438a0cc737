"""dry-run's mbox reading: the messages' spans found by a scan over large reads must be those of
mailbox.mbox's table of contents (the reference: Python's own mbox reader), and each message read
from its span must be the bytes mailbox gives for it, whatever the read boundaries."""

from __future__ import annotations

import mailbox
import os
import random
from pathlib import Path

import pytest

from mailwarden.adapters import sources
from mailwarden.adapters.sources import iter_items, mbox_spans

HAND_PICKED = [
    b"From a\n",
    b"From a",
    b"From a\n\n",
    b"From a\nbody\n\nFrom b\nbody\n",
    b"From a\nbody\nFrom b\nno blank line before\n\n\n",
    b"From a\n\nFrom b\n\n\nFrom c\r\n\r\nFrom d",
    b"From a\n>From quoted\n From not\nFromage\n\n",
]


def generated(rng: random.Random) -> bytes:
    parts = [b"From ", b"From x", b"", b"line", b"\r", b"From", b" From ", b">From "]
    ends = [b"\n", b"\n", b"\r\n", b"", b"\n\n"]
    data = b"From a\n" + b"".join(rng.choice(parts) + rng.choice(ends) for _ in range(rng.randint(0, 25)))
    return data.rstrip(b"\n") if rng.random() < 0.2 else data


def reference(path: Path) -> tuple[list[tuple[int, int]], list[bytes]]:
    box = mailbox.mbox(str(path), create=False)
    try:
        keys = sorted(box.keys())
        return [box._toc[k] for k in keys], [box.get_file(k).read() for k in keys]
    finally:
        box.close()


@pytest.mark.parametrize("chunk", [1, 2, 3, 8, 1 << 20])
def test_spans_are_mailboxs(tmp_path: Path, chunk: int) -> None:
    rng = random.Random(15)
    path = tmp_path / "box"
    for data in HAND_PICKED + [generated(rng) for _ in range(300)]:
        path.write_bytes(data)
        spans, _ = reference(path)
        with path.open("rb") as fh:
            assert list(mbox_spans(fh, chunk)) == spans, data


def test_messages_read_from_their_spans_are_mailboxs(tmp_path: Path) -> None:
    rng = random.Random(16)
    path = tmp_path / "box"
    for data in HAND_PICKED + [generated(rng) for _ in range(300)]:
        path.write_bytes(data)
        _, messages = reference(path)
        items = list(iter_items([str(path)]))
        assert [item.source for item in items] == [f"{path}#{i}" for i in range(len(messages))]
        read = []
        for item in items:
            with item.open() as stream:
                read.append(stream.readline() + stream.read(3) + stream.read())
        assert read == messages, data


def test_a_maildir_folder_that_cannot_be_listed_is_one_bad_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    maildir.add(b"Subject: kept\n\nbody\n")
    listdir = os.listdir

    def denied_in_cur(folder: str) -> list[str]:  # root may read any folder: refuse as for a user
        if str(folder).endswith("cur"):
            raise PermissionError(13, "Permission denied")
        return listdir(folder)

    monkeypatch.setattr(sources.os, "listdir", denied_in_cur)
    items = list(iter_items([str(tmp_path / "Maildir")]))
    assert [(item.path, item.error) for item in items] == [
        *((str(p), None) for p in (tmp_path / "Maildir" / "new").iterdir()),
        (str(tmp_path / "Maildir" / "cur"), "Permission denied"),
    ]
