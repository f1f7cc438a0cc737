"""dry-run --jobs: several worker processes, the same output in the same order as one."""

from __future__ import annotations

import json
import mailbox
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from mailwarden.adapters import dryrun_jobs
from mailwarden.adapters.dryrun_jobs import BATCH, batches, ordered_batches


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "dry-run", *args], capture_output=True, text=True, timeout=120
    )


def corpus(directory: Path, count: int) -> None:
    """Messages of different kinds and sizes, so that workers finish them out of order."""
    rng = random.Random(15)
    for i in range(count):
        kind = i % 5
        hops = 60 if kind == 0 else rng.randint(0, 3)  # 60 hops: rejected at end of headers
        received = b"".join(b"Received: from h%d.sender.test by r%d\n" % (h, h) for h in range(hops))
        body = b"line %d of a body\n" % i * rng.choice([1, 50, 2000])
        sender = b"alice@sender.test" if kind != 1 else b"user@example.com"
        msg = received + b"From: <" + sender + b">\nTo: bob@rcpt.test\nSubject: message %d\n" % i
        if kind == 2:
            msg += b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
            msg += body + b"--b--\n"
        else:
            msg += b"User-Agent: Mutt\n\n" + body
        (directory / f"{i:04d}.eml").write_bytes(msg)


def mixed(directory: Path) -> list[str]:
    """.eml files, an mbox, a Maildir, and bad input among them: a dangling link, a directory
    where a Maildir message should be, a path that does not exist."""
    eml = directory / "eml"
    eml.mkdir()
    corpus(eml, 3 * BATCH + 3)
    (eml / "0050-dangling.eml").symlink_to(directory / "nowhere")
    staging = directory / "staging"
    staging.mkdir()
    corpus(staging, 2 * BATCH + 5)
    box = mailbox.mbox(str(directory / "box"))
    for file in sorted(staging.iterdir()):
        box.add(file.read_bytes())
    box.close()
    maildir = mailbox.Maildir(str(directory / "Maildir"))
    for file in sorted(staging.iterdir())[: BATCH + 1]:
        maildir.add(file.read_bytes())
    (directory / "Maildir" / "new" / "not-a-file").mkdir()
    return [str(eml), str(directory / "box"), str(directory / "missing.eml"), str(directory / "Maildir")]


@pytest.mark.parametrize("flags", [["--json"], [], ["--json", "--auth-user", "alice"]])
def test_two_jobs_write_what_one_job_writes_in_the_same_order(tmp_path: Path, flags: list[str]) -> None:
    paths = mixed(tmp_path)
    one = dry_run(*flags, "--jobs", "1", *paths)
    two = dry_run(*flags, "--jobs", "2", *paths)
    assert one.returncode == two.returncode == 1, (one.stderr, two.stderr)  # the bad input
    assert two.stdout == one.stdout
    summary = re.compile(r", [\d.]+ msg/s$", re.M)  # the rate differs, nothing else may
    assert summary.sub("", two.stderr) == summary.sub("", one.stderr)
    errors = one.stderr.splitlines()
    assert len(errors) == 4 and all(line.startswith("mailwarden: ") for line in errors[:3]), errors
    assert ("cannot read" in errors[0] and "dangling" in errors[0]
            and "missing.eml" in errors[1] and "not-a-file" in errors[2]), errors
    assert errors[3].startswith("mailwarden dry-run: ") and "3 unreadable" in errors[3]
    if "--json" in flags:
        reports = [json.loads(line) for line in one.stdout.splitlines()]
        assert len(reports) == (3 * BATCH + 3) + (2 * BATCH + 5) + (BATCH + 1)
        assert [r["index"] for r in reports if "index" in r] == list(range(2 * BATCH + 5))
        assert {r["verdict"] for r in reports} >= {"reject", "continue"}


def test_written_messages_are_the_same_with_two_jobs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    corpus(src, 2 * BATCH + 1)
    for jobs in ("1", "2"):
        proc = dry_run("--jobs", jobs, "--auth-user", "alice", "--write", str(tmp_path / jobs), str(src))
        assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "2").iterdir()) and len(names) == 2 * BATCH + 1
    assert all((tmp_path / "1" / n).read_bytes() == (tmp_path / "2" / n).read_bytes() for n in names)


def _where(item: int) -> tuple[int, int]:
    return item, os.getpid()


def _where_batch(batch: list[int]) -> list[tuple[int, int]]:
    return [_where(item) for item in batch]


def _lost(batch: list[int], why: str) -> list[tuple[int, int]]:
    return [(item, -1) for item in batch]


def flat(results: Iterable[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    return [pair for batch in results for pair in batch]


def test_ordered_batches_run_in_other_processes_and_keep_the_order() -> None:
    items = list(range(10 * BATCH + 5))
    results = flat(ordered_batches(_where_batch, items, 2, _lost))
    assert [item for item, _ in results] == items
    assert os.getpid() not in {pid for _, pid in results}
    assert len({pid for _, pid in results}) == 2
    assert flat(ordered_batches(_where_batch, items, 1, _lost)) == [(i, os.getpid()) for i in items]


def _dies_on_batch_1(batch: list[int]) -> list[tuple[int, int]]:
    if BATCH in batch:
        os._exit(3)
    return _where_batch(batch)


def test_a_job_that_dies_loses_its_batches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real_start = dryrun_jobs._Job.__init__

    def counted(self: dryrun_jobs._Job[int], others: list[dryrun_jobs._Job[int]]) -> None:
        real_start(self, others)
        started.append(self.process.pid or 0)

    monkeypatch.setattr(dryrun_jobs._Job, "__init__", counted)
    items = list(range(20 * BATCH))
    results = flat(ordered_batches(_dies_on_batch_1, items, 2, _lost))
    assert [item for item, _ in results] == items
    lost = [item for item, pid in results if pid == -1]
    assert BATCH in lost and len(lost) <= 2 * BATCH  # its batch, and the one queued behind it
    # A new job took its place. Whether it got any batch depends on when the death was seen: a
    # job that starts late may die after the other has taken every batch (seen under load).
    assert len(started) == 3
    assert {pid for _, pid in results} - {-1} <= set(started)


def test_batches_shrink_at_the_end_and_keep_every_item() -> None:
    items = list(range(5 * BATCH + 3))
    sizes = [len(b) for b in batches(items, 2)]
    assert [x for b in batches(items, 2) for x in b] == items
    assert sizes[0] == BATCH and sizes[-1] < BATCH
    assert sizes == sorted(sizes, reverse=True) and min(sizes) >= 1
    assert [len(b) for b in batches(range(3), 2)] == [3]  # never below LAST


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    proc = dry_run("--jobs", "0", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("mailwarden: --jobs")


def test_jobs_end_quietly_when_dry_run_is_killed(tmp_path: Path) -> None:
    corpus(tmp_path, 40 * BATCH)
    proc = subprocess.Popen([sys.executable, "-m", "mailwarden", "dry-run", "--jobs", "2", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # the jobs are at work
    proc.kill()
    proc.wait(timeout=60)
    # The jobs hold stderr too: it ends when the last of them has exited.
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert "Traceback" not in err, err
