"""What balance.py and listener.py rely on in libmilter and Linux, one test per fact.

None of it is documented, so a pymilter or libmilter upgrade could change any of it; each test
then fails and names the fact. libmilter's listener runs alone here (tests/support/listener_probe.py),
driven step by step; the clients only open connections and send OPTNEG, which libmilter answers
once its listener has accepted.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.milterclient import ACTIONS_POSTFIX, PROTOCOL_POSTFIX

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "tests" / "support" / "listener_probe.py"
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "--inh-caps=+dac_read_search,+dac_override", "--ambient-caps=+dac_read_search,+dac_override"]
QUIET = 1.0
"""Seconds a connection must stay unanswered to count as not accepted (libmilter's own poll
timeout is 5 s, so a listener that could see it would have answered by then... or not at all)."""


class Probe:
    def __init__(self, tmp: Path, prefix: list[str] = (), options: list[str] = ()) -> None:  # type: ignore[assignment]
        self.path = tmp / "probe.sock"
        tmp.chmod(0o777)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(PROBE), f"unix:{self.path}", *options], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'milter'}"})
        assert self.ask_raw() == "ready"

    def ask_raw(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.ask_raw()

    def idle_address(self) -> bytes:
        return bytes.fromhex(self.ask("idle"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Probe]:
    p = Probe(tmp_path)
    yield p
    p.close()


class Optneg:
    """A connection that has sent OPTNEG; `answered(t)` says whether the reply came within t s."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(address)
        data = struct.pack("!III", 6, ACTIONS_POSTFIX, PROTOCOL_POSTFIX)
        self.sock.sendall(struct.pack("!I", len(data) + 1) + b"O" + data)

    def answered(self, within: float) -> bool:
        if not select.select([self.sock], [], [], within)[0]:
            return False
        head = self.sock.recv(5)
        return len(head) == 5 and head[4:5] == b"O"

    def close(self) -> None:
        self.sock.close()


def _settled(probe: Probe) -> None:
    """libmilter's listener back in poll() on the real socket, freshly: one connection answered,
    then a moment (the next poll timeout is 5 s away)."""
    conn = Optneg(str(probe.path))
    assert conn.answered(5), "libmilter does not answer on its socket at all"
    conn.close()
    time.sleep(0.2)


def test_the_listener_accepts_on_whatever_its_descriptor_names_each_time_round(probe: Probe) -> None:
    idle = probe.idle_address()
    _settled(probe)
    assert probe.ask("hold") == "ok"
    assert probe.ask("interrupt 1") == "ok"
    conn = Optneg(idle)
    assert conn.answered(5), ("libmilter no longer re-reads its listening descriptor each time "
                              "round its loop: balance.py cannot steer it with dup2")
    conn.close()
    assert probe.ask("resume") == "ok"
    assert probe.ask("interrupt 1") == "ok"
    conn = Optneg(str(probe.path))
    assert conn.answered(5)
    conn.close()


def test_a_waiting_poll_keeps_the_files_of_its_first_pass(probe: Probe) -> None:
    idle = probe.idle_address()
    _settled(probe)
    assert probe.ask("hold") == "ok"
    conn = Optneg(idle)
    assert not conn.answered(QUIET), ("a poll() already waiting saw the descriptor change: the "
                                      "interrupt in listener.py resume() is no longer needed")
    assert probe.ask("interrupt 1") == "ok"
    assert conn.answered(5), "the interrupt no longer makes libmilter poll again"
    conn.close()


def test_eintr_in_poll_is_retried(probe: Probe) -> None:
    _settled(probe)
    # libmilter gives up after MAX_FAILS_S (16) failed polls in a row that are not EINTR.
    for _ in range(5):
        assert probe.ask("interrupt 20") == "ok"
        time.sleep(0.05)
    assert probe.ask("alive") == "yes", "libmilter's listener stopped on EINTR"
    conn = Optneg(str(probe.path))
    assert conn.answered(5)
    conn.close()


def test_eagain_from_accept_is_retried(probe: Probe) -> None:
    # Each round: the listener polls on the real socket, its descriptor is pointed away, and a
    # connection wakes it; it then accepts on the idle socket, which has nothing: EAGAIN. More
    # rounds than libmilter's MAX_FAILS_A (16), after which it would stop on any other error.
    probe.idle_address()
    waiting: list[Optneg] = []
    for _ in range(17):
        assert probe.ask("resume") == "ok"
        assert probe.ask("interrupt 1") == "ok"
        time.sleep(0.1)
        assert probe.ask("hold") == "ok"
        waiting.append(Optneg(str(probe.path)))
        time.sleep(0.05)
    assert probe.ask("alive") == "yes", "libmilter's listener stopped on EAGAIN from accept()"
    assert probe.ask("resume") == "ok"
    assert probe.ask("interrupt 1") == "ok"
    for conn in waiting:
        assert conn.answered(5)
        conn.close()


@pytest.mark.root
def test_libmilter_stopping_unlinks_the_socket_when_not_root(tmp_path: Path) -> None:
    """Why a worker never lets libmilter stop (listener.py): its clean-up removes the socket
    path, which the sibling workers still serve, whenever the process is not root."""
    probe = Probe(tmp_path, UNPRIVILEGED)
    try:
        assert probe.path.is_socket()
        probe.proc.send_signal(signal.SIGTERM)  # to libmilter's own signal thread
        deadline = time.monotonic() + 10
        while probe.ask("alive") == "yes" and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # its listener notices the stop on its next round
                Optneg(str(probe.path)).close()
            time.sleep(0.1)
        assert probe.ask("alive") == "no"
        assert not probe.path.exists(), ("libmilter no longer unlinks the socket when it stops as "
                                         "non-root: listener.py's care is no longer needed")
    finally:
        probe.close()


@pytest.mark.root
def test_a_main_thread_that_never_blocks_the_stop_signals_takes_every_one(tmp_path: Path) -> None:
    """Why a worker's main thread keeps SIGTERM/SIGHUP/SIGINT unblocked (workers.py): Linux then
    hands each process-directed one to it, and libmilter's signal thread, waiting for the same
    signals, never gets one to stop the listener (and, not root, unlink the socket)."""
    probe = Probe(tmp_path, UNPRIVILEGED, ["--main-takes-signals"])
    try:
        # Until libmilter has blocked them in its own threads (smfi_main), a signal may land on
        # one of those; its Python handler then runs in the main thread, but only later.
        _settled(probe)
        for n in range(1, 31):
            probe.proc.send_signal(signal.SIGHUP if n % 2 else signal.SIGTERM)
            assert probe.ask("taken") == str(n), "a stop signal went to another thread than main"
        assert probe.ask("alive") == "yes"
        assert probe.path.is_socket()
        conn = Optneg(str(probe.path))
        assert conn.answered(5)
        conn.close()
    finally:
        probe.close()
