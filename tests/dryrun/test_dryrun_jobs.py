"""dry-run --jobs: several worker processes, the same output in the same order as one."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailwarden.adapters.dryrun_jobs import BATCH, ordered_map


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


@pytest.mark.parametrize("flags", [["--json"], [], ["--json", "--auth-user", "alice"]])
def test_two_jobs_write_what_one_job_writes_in_the_same_order(tmp_path: Path, flags: list[str]) -> None:
    corpus(tmp_path, 6 * BATCH + 3)
    missing = str(tmp_path / "missing.eml")
    one = dry_run(*flags, "--jobs", "1", str(tmp_path), missing)
    two = dry_run(*flags, "--jobs", "2", str(tmp_path), missing)
    assert one.returncode == two.returncode == 1, (one.stderr, two.stderr)  # the missing file
    assert two.stdout == one.stdout
    summary = re.compile(r", [\d.]+ msg/s$", re.M)  # the rate differs, nothing else may
    assert summary.sub("", two.stderr) == summary.sub("", one.stderr)
    if "--json" in flags:
        sources = [json.loads(line)["source"] for line in one.stdout.splitlines()]
        assert sources == sorted(sources) and len(sources) == 6 * BATCH + 3
        assert {json.loads(line)["verdict"] for line in one.stdout.splitlines()} >= {"reject", "continue"}


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


def test_ordered_map_runs_in_other_processes_and_keeps_the_order() -> None:
    items = list(range(10 * BATCH + 5))
    results = list(ordered_map(_where, items, 2))
    assert [item for item, _ in results] == items
    assert os.getpid() not in {pid for _, pid in results}
    assert list(ordered_map(_where, items, 1)) == [(i, os.getpid()) for i in items]


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    proc = dry_run("--jobs", "0", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.startswith("mailwarden: --jobs")
