"""`mailwarden serve` as a postmaster runs it: one instance per socket, reload on SIGHUP,
counts on SIGUSR1, and the user it runs as."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.milterclient import MilterClient
from tests.support.postfix import MailwardenProcess
from tests.support.processes import children as _children
from tests.support.processes import until as _until

Factory = Callable[..., MailwardenProcess]
AS_ROOT = ["--user", "root"] if os.geteuid() == 0 else []  # as MailwardenProcess does
MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhi\r\n"


def _serve(socket_path: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """A second `mailwarden serve`, run to its end (it must not get far)."""
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "serve", "--socket", f"unix:{socket_path}",
         "--zone", "/dev/null", *AS_ROOT, *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


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
        [sys.executable, "-m", "mailwarden", "serve", "--socket", f"unix:{path}", "--zone", "/dev/null",
         *AS_ROOT],
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


# The team's load tool, beside the checkout as in CI and every developer's tree.
MILTERLOAD = Path(__file__).resolve().parents[3] / "shared" / "tools" / "milterload.py"


def _hops(n: int) -> bytes:
    return b"".join(b"Received: from hop%d.example by relay.example; Sat, 21 Nov 2026 10:00:00 +0000\r\n" % i
                    for i in range(n)) + MESSAGE


def _verdict(spec: str, raw: bytes) -> str:
    with MilterClient.connect(spec) as mc:
        mc.optneg()
        return mc.send_message(raw).verdict


def _summaries(proc: MailwardenProcess) -> int:
    return len(re.findall(r"verdict=", proc.log()))


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_under_load_with_no_tempfail_and_no_refused_connection(
        mailwarden_factory: Factory, workers: int) -> None:
    proc = mailwarden_factory(f"[milter]\nworkers = {workers}\n[hopcount]\nlimit = 50\n")
    assert proc.proc is not None and proc.config_path is not None
    _until(lambda: len(_children(proc.proc.pid)) == workers, 10, "the workers")  # type: ignore[union-attr]
    old_workers = _children(proc.proc.pid)
    assert _verdict(proc.spec, _hops(5)) == "accept"
    proc.config_path.write_text(f"[milter]\nworkers = {workers}\n[hopcount]\nlimit = 4\n")
    messages = 3000
    load = subprocess.Popen(
        [sys.executable, str(MILTERLOAD), "--socket", proc.spec, "--concurrency", "8",
         "--messages", str(messages), "--per-message-connections", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _until(lambda: _summaries(proc) > 100, 30, "the load to get going")
        proc.proc.send_signal(signal.SIGHUP)
        _until(lambda: "reloaded:" in proc.log(), 20, "the reload")
        _until(lambda: not old_workers & _children(proc.proc.pid), 20,  # type: ignore[union-attr]
               "the old workers to finish and exit")
        assert load.poll() is None, f"the load ended before the reload did: raise --messages ({messages})"
        out, err = load.communicate(timeout=120)
    finally:
        if load.poll() is None:
            load.kill()
    result = json.loads(out)
    assert load.returncode == 0, (out, err)
    assert result["messages_completed"] == messages, result
    assert not result["errors"], result  # a refused or cut connection is an error
    assert set(result["final_actions"]) <= {"accept", "continue"}, result["final_actions"]
    assert len(_children(proc.proc.pid)) == workers
    assert "while stopping" not in proc.log()
    # The new configuration is the one in force.
    assert _verdict(proc.spec, _hops(5)) == "reject"


def test_a_bad_config_on_reload_is_logged_key_by_key_and_kept_out(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\n[hopcount]\nlimit = 4\n")
    assert proc.proc is not None and proc.config_path is not None
    _until(lambda: len(_children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    workers = _children(proc.proc.pid)
    proc.config_path.write_text("[milter]\nworkers = 2\nstop_grace = -1\n[hopcount]\nlimit = -3\n")
    proc.proc.send_signal(signal.SIGHUP)
    _until(lambda: proc.log().count("reload refused") >= 2, 10, "the reload to be refused")
    log = proc.log()
    assert re.search(r"reload refused, keeping the running configuration: .*milter\.stop_grace", log), log
    assert re.search(r"reload refused, keeping the running configuration: .*hopcount\.limit", log), log
    assert _children(proc.proc.pid) == workers  # nothing replaced
    assert _verdict(proc.spec, _hops(5)) == "reject"  # still limit 4
    assert _verdict(proc.spec, _hops(2)) == "accept"
    # A file that is not even TOML is refused too, and the service stays up.
    proc.config_path.write_text("[milter\n")
    proc.proc.send_signal(signal.SIGHUP)
    _until(lambda: proc.log().count("reload refused") >= 3, 10, "the second refusal")
    assert proc.running and _children(proc.proc.pid) == workers
    assert _verdict(proc.spec, _hops(5)) == "reject"


def test_sigusr1_logs_each_workers_counts(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\n")
    assert proc.proc is not None
    _until(lambda: len(_children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    for _ in range(4):
        assert _verdict(proc.spec, MESSAGE) == "accept"
    pattern = r"worker \d \(pid (\d+)\): (\d+) connection\(s\) open, (\d+) served"

    def settled() -> bool:
        """Asks again until both workers report their last connection closed (libmilter runs
        the close callback a moment after the client has gone)."""
        assert proc.proc is not None
        seen = len(re.findall(pattern, proc.log()))
        proc.proc.send_signal(signal.SIGUSR1)
        _until(lambda: len(re.findall(pattern, proc.log())) == seen + 2, 10, "a line from each worker")
        return all(int(open_) == 0 for _, open_, _ in re.findall(pattern, proc.log())[-2:])

    _until(settled, 10, "no connection open")
    lines = re.findall(pattern, proc.log())[-2:]
    assert {int(pid) for pid, _, _ in lines} == _children(proc.proc.pid)
    # Four messages on their own connections, and the one connection start() checks with.
    assert sum(int(served) for _, _, served in lines) == 5, lines
    assert re.search(r"supervisor \(pid \d+\): worker 0 pid \d+, worker 1 pid \d+", proc.log())


def _halfway(spec: str) -> MilterClient:
    """A message halfway through: headers sent, no body yet."""
    mc = MilterClient.connect(spec, timeout=20)
    mc.optneg()
    mc.conn()
    mc.helo()
    mc.mail("<a@sender.test>")
    mc.rcpt("<b@rcpt.test>")
    mc.data()
    mc.header("From", b" a@example.com")
    mc.header("Subject", b" in flight")
    mc.eoh()
    return mc


def test_sighup_lets_the_old_workers_finish_their_messages(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\nstop_grace = 30\n")
    assert proc.proc is not None
    _until(lambda: len(_children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    old = _children(proc.proc.pid)
    clients = [_halfway(proc.spec) for _ in range(3)]
    proc.proc.send_signal(signal.SIGHUP)
    _until(lambda: "reloaded:" in proc.log(), 20, "the reload")
    _until(lambda: len(_children(proc.proc.pid) - old) == 2, 20, "two new workers")  # type: ignore[union-attr]
    assert _send(proc.spec) == "accept"  # served by a new one meanwhile
    for mc in clients:
        mc.body(b"hello\r\n")
        assert mc.eom().verdict == "accept", proc.log()
        mc.close()
    _until(lambda: not old & _children(proc.proc.pid), 10, "the old workers to exit")  # type: ignore[union-attr]
    assert "still open after" not in proc.log() and "while stopping" not in proc.log(), proc.log()


def test_sigterm_stops_accepting_and_finishes_the_messages_in_flight(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\nstop_grace = 30\n")
    assert proc.proc is not None
    clients = [_halfway(proc.spec) for _ in range(3)]
    proc.proc.send_signal(signal.SIGTERM)
    _until(lambda: not proc.socket_path.exists(), 10, "the socket file to go")
    with pytest.raises(OSError):  # Postfix's next connect fails at once, and it retries later
        MilterClient.connect(proc.spec, timeout=2).close()
    _until(lambda: "finishing" in proc.log(), 10, "the workers to report what they finish")
    assert proc.running, proc.log()
    for mc in clients:
        mc.body(b"hello\r\n")
        assert mc.eom().verdict == "accept", proc.log()
        mc.close()
    assert proc.proc.wait(10) == 0, proc.log()
    assert "still open after" not in proc.log(), proc.log()
    assert "while stopping" not in proc.log(), proc.log()


def test_reloads_faster_than_the_old_workers_drain(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\nstop_grace = 30\n")
    assert proc.proc is not None
    _until(lambda: len(_children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    with MilterClient.connect(proc.spec) as held:  # keeps one old worker draining
        held.optneg()
        assert held.send_message(MESSAGE).verdict == "accept"
        for n in range(1, 4):
            proc.proc.send_signal(signal.SIGHUP)
            _until(lambda: proc.log().count("reloaded:") == n, 20, f"reload {n}")  # noqa: B023
        assert _send(proc.spec) == "accept"
        assert held.send_message(MESSAGE).verdict == "accept"  # the draining worker still answers
    _until(lambda: len(_children(proc.proc.pid)) == 2, 20, "only the newest two workers")  # type: ignore[union-attr]
    assert proc.running
    assert "Traceback" not in proc.log()


def test_a_second_instance_on_a_live_inet_socket_refuses_to_start() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = f"inet:{port}@127.0.0.1"
    command = [sys.executable, "-m", "mailwarden", "serve", "--socket", spec, "--zone", "/dev/null", *AS_ROOT]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
    try:
        def serving() -> bool:
            try:
                return _send(spec) == "accept"
            except OSError:
                return False
        _until(serving, 20, "the first instance")
        second = subprocess.run(command, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert second.returncode == 1, second
        assert second.stderr.strip() == f"mailwarden: socket {spec} is served; stop that instance first"
        assert _send(spec) == "accept"
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(10)


def test_a_reload_leaves_the_process_settings_to_a_restart_and_says_so(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\n[hopcount]\nlimit = 50\n")
    assert proc.proc is not None and proc.config_path is not None
    _until(lambda: len(_children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    proc.config_path.write_text("[milter]\nworkers = 3\nstop_grace = 5\n[hopcount]\nlimit = 4\n")
    proc.proc.send_signal(signal.SIGHUP)
    _until(lambda: "reloaded:" in proc.log(), 20, "the reload")
    assert "reload: [milter] workers changes only at a restart; still 2" in proc.log()
    assert "reload: [milter] stop_grace changes only at a restart; still 10.0" in proc.log()
    _until(lambda: len(_children(proc.proc.pid)) == 2, 20, "two workers again")  # type: ignore[union-attr]
    assert _verdict(proc.spec, _hops(5)) == "reject"  # the rest of the file is in force
