"""`[milter] workers`: forked workers on one socket, looked after by the process that was started.

Each test runs the real `mailwarden serve` and watches its processes through /proc.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from tests.support.milterclient import MilterClient
from tests.support.postfix import MailwardenProcess
from tests.support.processes import alive as _alive
from tests.support.processes import children as _children
from tests.support.processes import until as _until

from mailwarden.adapters.process.workers import MAX_AUTO, worker_count

Factory = Callable[..., MailwardenProcess]


def _workers(proc: MailwardenProcess, count: int) -> set[int]:
    assert proc.proc is not None
    pid = proc.proc.pid
    _until(lambda: len(_children(pid)) == count, 10, f"{count} workers")
    return _children(pid)


MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhi\r\n"


def _send(spec: str) -> str:
    with MilterClient.connect(spec) as mc:
        mc.optneg()
        return mc.send_message(MESSAGE).verdict


def test_worker_count_auto_is_the_cpus_up_to_a_cap() -> None:
    assert worker_count("auto") == min(len(os.sched_getaffinity(0)), MAX_AUTO)
    assert worker_count(5) == 5


def _workers_of(proc: MailwardenProcess, clients: list[MilterClient]) -> list[int]:
    """The pid of the worker that served each client's last message, from the summary lines."""
    qids = [mc.queue_id for mc in clients]
    _until(lambda: all(f" {q}: " in proc.log() for q in qids), 5, "a summary line per message")
    by_qid = {m.group(2): int(m.group(1))
              for m in re.finditer(r"mailwarden\[(\d+)\]: (\S+): ", proc.log())}
    return [by_qid[q] for q in qids]


@contextlib.contextmanager
def _one_by_one(proc: MailwardenProcess, count: int, timeout: float = 30.0,
                pause: float = 0.0) -> Iterator[list[MilterClient]]:
    """`count` connections opened one after another, each answering a message, held open."""
    clients: list[MilterClient] = []
    try:
        for _ in range(count):
            mc = MilterClient.connect(proc.spec, timeout=timeout)
            clients.append(mc)
            mc.optneg()
            assert mc.send_message(MESSAGE).verdict == "accept"
            time.sleep(pause)
        yield clients
    finally:
        for mc in clients:
            mc.close()


def test_the_configured_workers_all_serve_the_one_socket(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 3\n")
    workers = _workers(proc, 3)
    # Opened one by one, held open: shared out, so every worker answers some of them. (Opened
    # in the same instant, they could all land on one: see balance.py.)
    with _one_by_one(proc, 8, pause=0.02) as clients:
        pids = set(_workers_of(proc, clients))
    assert pids == workers, (pids, workers)


def test_connections_that_arrive_one_by_one_are_shared_out_evenly(mailwarden_factory: Factory) -> None:
    # As smtpd processes open theirs. Left to the kernel, the worker that accepted the last
    # connection is first in line for the next one, and most land on one worker.
    proc = mailwarden_factory("[milter]\nworkers = 2\n")
    workers = _workers(proc, 2)
    # Answered at once (timeout): a worker that stops holding back must not leave its listener
    # waiting for libmilter's 5 s poll timeout while connections queue.
    with _one_by_one(proc, 10, timeout=2.0, pause=0.02) as clients:
        served = _workers_of(proc, clients)
    counts = sorted(served.count(pid) for pid in workers)
    assert counts[1] - counts[0] <= 2, f"connections per worker: {counts}"
    # Once they close, new connections are shared out again.
    with _one_by_one(proc, 4, timeout=2.0, pause=0.02) as clients:
        served = _workers_of(proc, clients)
    assert sorted(served.count(pid) for pid in workers) == [2, 2], served


def _thread_cpus(pid: int) -> set[frozenset[int]]:
    """The CPU sets of every thread of a process."""
    found = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            found.add(frozenset(os.sched_getaffinity(int(tid))))
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
@pytest.mark.parametrize("pin", [True, False])
def test_each_worker_keeps_to_a_cpu_of_its_own(mailwarden_factory: Factory, pin: bool) -> None:
    proc = mailwarden_factory(f"[milter]\nworkers = 2\npin_workers = {str(pin).lower()}\n")
    workers = sorted(_workers(proc, 2))
    # libmilter's threads for connections are in the count too.
    with _one_by_one(proc, 4) as clients:
        assert sorted(set(_workers_of(proc, clients))) == workers  # threads in both
        cpus = [_thread_cpus(w) for w in workers]
    if pin:
        assert all(len(c) == 1 and len(next(iter(c))) == 1 for c in cpus), cpus
        assert cpus[0] != cpus[1], cpus
    else:
        assert cpus == [{frozenset(os.sched_getaffinity(0))}] * 2, cpus


def test_a_worker_that_dies_is_replaced(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\n")
    victim, *_ = sorted(_workers(proc, 2))
    os.kill(victim, signal.SIGKILL)
    _until(lambda: f"worker {victim} killed by signal 9; starting another" in proc.log(), 5,
           "the supervisor to notice")
    now = _workers(proc, 2)
    assert victim not in now
    for _ in range(4):
        assert _send(proc.spec) == "accept"
    assert proc.running


class _Unprivileged(MailwardenProcess):
    """As a non-root user (keeping only the right to read and write any file, as this test tree
    lives under /root). libmilter removes the socket file when a listener stops only when it is
    not root, so the first worker to stop takes the path its siblings would be woken through."""

    def command(self) -> list[str]:
        caps = "+dac_read_search,+dac_override"
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                f"--inh-caps={caps}", f"--ambient-caps={caps}", *super().command()]


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("user", ["root", pytest.param("nobody", marks=pytest.mark.root)])
def test_a_stop_signal_ends_every_worker_promptly(signo: int, user: str) -> None:
    proc = (_Unprivileged if user == "nobody" else MailwardenProcess)(config="[milter]\nworkers = 3\n")
    try:
        proc.start()
        assert proc.proc is not None
        workers = _workers(proc, 3)
        # After connections, a worker may be holding back, its listener waiting on an idle socket.
        for _ in range(3):
            assert _send(proc.spec) == "accept"
        proc.proc.send_signal(signo)
        try:
            rc = proc.proc.wait(10)  # with nothing open, each worker exits as soon as it is told
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 10 s after signal {signo}:\n{proc.log()}") from None
        assert rc == 0, proc.log()
        assert not any(_alive(w) for w in workers)
        assert not proc.socket_path.exists()
        assert proc.log().rstrip().endswith("stopped"), proc.log()[-500:]
        # Each worker stopped of its own accord: not killed, by the signal or after the grace.
        assert "while stopping" not in proc.log(), proc.log()[-1000:]
    finally:
        proc.close()


def test_killing_the_supervisor_takes_the_workers_with_it(mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\n")
    workers = _workers(proc, 2)
    assert proc.proc is not None
    proc.proc.kill()
    proc.proc.wait(5)
    _until(lambda: not any(_alive(w) for w in workers), 2, "the workers to die with the supervisor")


@pytest.mark.root
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGHUP])
def test_one_worker_signalled_alone_leaves_the_socket_to_its_siblings(signo: int) -> None:
    # Not root, where libmilter's own stop would unlink the socket path (see
    # test_libmilter_assumptions.py): SIGTERM drains that worker alone, SIGHUP is ignored.
    proc = _Unprivileged(config="[milter]\nworkers = 2\n")
    try:
        proc.start()
        victim, sibling = sorted(_workers(proc, 2))
        for _ in range(3 if signo == signal.SIGHUP else 1):
            os.kill(victim, signo)
            time.sleep(0.1)
            assert proc.socket_path.is_socket(), proc.log()[-2000:]
        if signo == signal.SIGTERM:
            _until(lambda: not _alive(victim), 5, "the signalled worker to stop")
            _until(lambda: len(_children(proc.proc.pid)) == 2, 5, "its replacement")  # type: ignore[union-attr]
        else:
            assert _alive(victim)
            assert "worker 0 ignores SIGHUP" in proc.log() or "worker 1 ignores SIGHUP" in proc.log()
        assert _alive(sibling)
        for _ in range(4):
            assert _send(proc.spec) == "accept"
        assert proc.socket_path.is_socket()
    finally:
        proc.close()
