"""`mailwarden serve` as a postmaster runs it: one instance per socket, reload on SIGHUP,
counts on SIGUSR1, and the user it runs as."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.milterclient import MilterClient
from tests.support.postfix import MailwardenProcess

Factory = Callable[..., MailwardenProcess]
MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhi\r\n"


def _serve(socket_path: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """A second `mailwarden serve`, run to its end (it must not get far)."""
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "serve", "--socket", f"unix:{socket_path}",
         "--zone", "/dev/null", *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _send(spec: str) -> str:
    with MilterClient.connect(spec) as mc:
        mc.optneg()
        return mc.send_message(MESSAGE).verdict


def test_a_second_instance_on_a_live_socket_refuses_to_start(mailwarden_factory: Factory) -> None:
    first = mailwarden_factory()
    assert first.proc is not None
    second = _serve(first.socket_path)
    assert second.returncode == 1, second
    assert second.stderr.strip() == (f"mailwarden: socket unix:{first.socket_path} is served by pid "
                                     f"{first.proc.pid}; stop that instance first"), second.stderr
    assert "Traceback" not in second.stderr
    # The first still has its socket, and serves.
    assert first.socket_path.is_socket()
    assert _send(first.spec) == "accept"


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "milter.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a socket file nobody listens on: a killed instance's leftover
    stale.close()
    assert path.is_socket()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailwarden", "serve", "--socket", f"unix:{path}", "--zone", "/dev/null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        def serving() -> bool:
            try:
                return _send(f"unix:{path}") == "accept"
            except OSError:
                assert proc.poll() is None, "serve exited on a stale socket"
                return False
        _until(serving, 20, "serve to replace the stale socket")
    finally:
        proc.terminate()
        proc.wait(10)
    assert not path.exists()
