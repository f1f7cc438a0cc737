"""What a `mailwarden serve` process tree is doing, read from /proc: its workers, their CPU time,
memory, threads and descriptors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cpu_ticks(pids: list[int]) -> int:
    """User and system CPU time of `pids`, in clock ticks: work done, whatever the machine's load."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total


@dataclass(frozen=True)
class Usage:
    rss_kb: int
    threads: int
    fds: int


def usage(pid: int) -> Usage:
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return Usage(rss, threads, len(os.listdir(f"/proc/{pid}/fd")))
