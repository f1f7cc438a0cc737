"""Milters for the benchmarks: start and stop them, load them with milterload (one milter) or
_chain.py (two, as Postfix drives them), and measure what each costs: messages/s, latency,
CPU per message and peak memory of the whole process tree, in interleaved rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (a worktree under /work/wt/ finds /work/shared).
LOAD = next((p / "shared" / "tools" / "milterload.py" for p in ROOT.parents
             if (p / "shared" / "tools" / "milterload.py").exists()),
            ROOT.parent / "shared" / "tools" / "milterload.py")
CHAIN = Path(__file__).resolve().with_name("_chain.py")
TICK = os.sysconf("SC_CLK_TCK")


def wait_socket(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    """Wait until the milter accepts connections on unix socket `path`."""
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.05)


def wait_tcp(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        with socket.socket() as s:
            try:
                s.connect(("127.0.0.1", port))
                return
            except OSError:
                pass
        time.sleep(0.05)


def start(cmd: list[str], sock: Path, what: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, what)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Milter:
    """A running milter: its process (the root of its tree) and its socket spec."""

    name: str
    proc: subprocess.Popen[bytes]
    socket: str

    def pids(self) -> list[int]:
        """The process and all its descendants (mailwarden's workers, say)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _stat(int(entry))
                if stat:
                    children.setdefault(int(stat[1]), []).append(int(entry))
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the tree, reaped children included."""
        total = 0
        for pid in self.pids():
            stat = _stat(pid)
            if stat:  # utime, stime, cutime, cstime
                total += sum(int(v) for v in stat[11:15])
        return total / TICK

    def reset_peak(self) -> None:
        for pid in self.pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM
            except OSError:
                pass

    def peak_rss_mb(self) -> float:
        """The sum over the tree of each process's peak resident memory since reset_peak."""
        kb = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        kb += int(line.split()[1])
            except OSError:
                pass
        return kb / 1024

    def stop(self) -> None:
        """Stop the process, then whatever of its tree outlives it (the reading milter's forked
        workers are not stopped by their parent)."""
        tree = self.pids()[1:]
        stop(self.proc)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [11] utime..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def milterload(sock: Path, messages: int, concurrency: int, extra: list[str]) -> dict[str, object]:
    """Run ../shared/tools/milterload.py against `sock`; its JSON result."""
    out = subprocess.run(
        [sys.executable, str(LOAD), "--socket", f"unix:{sock}", "-n", str(messages),
         "-c", str(concurrency), "--json", *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


@dataclass
class Side:
    """One side of a comparison: a milter, or several driven in turn as Postfix drives them."""

    label: str
    milters: Sequence[Milter]
    extra: list[str] = field(default_factory=list)

    def cpu_s(self) -> float:
        return sum(m.cpu_s() for m in self.milters)


@dataclass
class Round:
    rate: float
    p50: float
    p99: float
    cpu_ms: float  # milter CPU per message (the load generator's own is not counted)


def run_load(side: Side, messages: int, concurrency: int, extra: list[str]) -> Round:
    """One load run; exits with the tool's complaint when a message failed or missed a header."""
    if len(side.milters) == 1:
        cmd = [sys.executable, str(LOAD), "--socket", side.milters[0].socket]
    else:
        cmd = [sys.executable, str(CHAIN), *(m.socket for m in side.milters), "--"]
    cmd += ["-n", str(messages), "-c", str(concurrency), "--json", *side.extra, *extra]
    cpu0 = side.cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    cpu = side.cpu_s() - cpu0
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{side.label}: load failed: {proc.stderr[-2000:]}") from None
    if proc.returncode != 0:
        raise SystemExit(f"{side.label}: errors or missing headers: {proc.stdout[-2500:]}")
    done = int(result["messages_completed"])
    lat = result["latency_ms"]
    return Round(float(result["msgs_per_s"]), float(lat["p50"]), float(lat["p99"]), cpu * 1000 / done)


@dataclass
class Measured:
    label: str
    rounds: list[Round]
    rss_mb: float

    @property
    def best(self) -> float:
        return max(r.rate for r in self.rounds)

    @property
    def median(self) -> float:
        return statistics.median(r.rate for r in self.rounds)

    def mid(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds)


def interleaved(sides: Sequence[Side], messages: int, concurrency: int, rounds: int,
                extra: list[str] | None = None) -> list[Measured]:
    """A warm-up each, then `rounds` rounds taking the sides in turn, so that drift in the
    machine's load hits every side alike."""
    extra = extra or []
    for side in sides:
        run_load(side, max(50, min(300, messages // 5)), concurrency, extra)
        for m in side.milters:
            m.reset_peak()
    results: list[list[Round]] = [[] for _ in sides]
    for _ in range(rounds):
        for i, side in enumerate(sides):
            results[i].append(run_load(side, messages, concurrency, extra))
    return [Measured(side.label, res, sum(m.peak_rss_mb() for m in side.milters))
            for side, res in zip(sides, results, strict=True)]


@dataclass
class Row:
    """One line of bench/RESULTS.md: mailwarden (sides[0]) against its reference (sides[1])."""

    name: str
    sides: list[Measured]
    command: str
    min_ratio: float | None = None  # target: best mailwarden rate / best reference rate
    max_p99_ms: float | None = None  # target: mailwarden's median p99
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.sides[0].best / self.sides[1].best

    @property
    def ratio_median(self) -> float:
        return self.sides[0].median / self.sides[1].median

    def verdict(self) -> str:
        """'met', 'NOT met (...)' or '' when the row has no target."""
        misses = []
        if self.min_ratio is not None and self.ratio < self.min_ratio:
            misses.append(f"ratio {self.ratio:.2f} < {self.min_ratio}")
        if self.max_p99_ms is not None and self.sides[0].mid("p99") >= self.max_p99_ms:
            misses.append(f"p99 {self.sides[0].mid('p99'):.1f} ms >= {self.max_p99_ms}")
        if self.min_ratio is None and self.max_p99_ms is None:
            return ""
        return "NOT met: " + "; ".join(misses) if misses else "met"

    def print(self) -> None:
        mw, ref = self.sides
        print(f"{self.name}: {mw.label} {mw.best:.0f}/s (median {mw.median:.0f}), {ref.label} "
              f"{ref.best:.0f}/s (median {ref.median:.0f}), ratio {self.ratio:.2f}; p50 "
              f"{mw.mid('p50'):.1f} / {ref.mid('p50'):.1f} ms, p99 "
              f"{mw.mid('p99'):.1f} / {ref.mid('p99'):.1f} ms; CPU {mw.mid('cpu_ms'):.3f} / "
              f"{ref.mid('cpu_ms'):.3f} ms/msg; {self.verdict()}", flush=True)


def standalone(parser: Callable[[], argparse.ArgumentParser],
               rows: Callable[[argparse.Namespace], list[Row]]) -> None:
    """A bench module run on its own: its rows, printed as they are measured."""
    rows(parser().parse_args())
    sys.exit(0)
