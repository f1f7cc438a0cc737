"""One worker process: libmilter's listener and its threads, until the supervisor says stop.

libmilter runs one thread per connection, but in one Python process every callback of every
thread takes the same GIL: past a few connections the threads queue for it, and the hand-offs
cost more CPU than the callbacks (perf put a quarter of the server's samples in futex wake-ups
at 32 connections). Forked workers each have their own GIL, so Python work spreads over the
cores, the way Postfix, Rspamd and Amavis spread theirs over processes.

libmilter runs in a thread of its own; the main thread keeps the signals. libmilter starts a
signal thread that stops the listener on SIGHUP, SIGTERM or SIGINT, and its stop then unlinks
the socket path when the process is not root, under the siblings still serving it. So the
worker's main thread never blocks those signals once it has its handlers, and handles them
itself: Linux hands a process-directed signal to the main thread whenever that thread does not
block it, so libmilter's thread never gets one (tested: tests/adapter/test_workers.py). SIGTERM and SIGINT
drain (listener.py: stop accepting, finish the connections open, up to the grace), SIGHUP is
ignored (a reload is the supervisor's), SIGUSR1 logs the worker's counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailwarden.adapters.process import sockets
from mailwarden.adapters.process.balance import Balance
from mailwarden.adapters.process.listener import Listener
from mailwarden.reports.recorder import flush_recorders

LOG = logging.getLogger("mailwarden.workers")

MAX_AUTO = 8
""""auto" gives one worker per CPU, up to this many: past it the DNS caches, one per worker,
cost more than the extra cores give."""

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CONTROL_SIGNALS = (*DRAIN_SIGNALS, signal.SIGHUP, signal.SIGUSR1)
INTERRUPT = signal.SIGUSR2
"""Sent by a worker to its own listener thread; does nothing but end a poll() with EINTR."""


def worker_count(setting: int | str) -> int:
    """The number of workers for the `[milter] workers` setting ("auto" or a count)."""
    if setting == "auto":
        return max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO))
    return int(setting)


def pin_to_cpu(seat: int) -> int:
    """Keep the calling thread, and every thread it starts from now on, on one CPU: the
    seat-th of those allowed (wrapping round). Returns that CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[seat % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    return cpu


class Tally:
    """A worker's connections, told by the callback adapter (pymilter.Connections): the counts
    SIGUSR1 logs, and the balance's."""

    def __init__(self) -> None:
        self.open = 0
        self.total = 0
        self.balance: Balance | None = None
        self._lock = threading.Lock()

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            self.total += 1
        if self.balance is not None:
            self.balance.opened()

    def closed(self) -> None:
        with self._lock:
            self.open -= 1
        if self.balance is not None:
            self.balance.closed()


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker gets from the supervisor."""

    listen_fd: int
    run_libmilter: Callable[[], object]
    tally: Tally
    balance: Balance | None
    pin: bool
    grace: float
    drop_privileges: Callable[[], None] = lambda: None


def run_worker(setup: WorkerSetup, seat: int, slot: int, ready: int) -> int:
    """The worker's life; returns only when libmilter stopped by itself (an error)."""
    if setup.pin:  # before any thread starts: each inherits the CPU of the thread that starts it
        try:
            LOG.debug("worker %d on CPU %d", seat, pin_to_cpu(seat))
        except OSError as exc:  # a sandbox that forbids it: serve unpinned rather than not at all
            LOG.warning("worker %d cannot keep to one CPU: %s", seat, exc)
    setup.drop_privileges()
    received: list[int] = []
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    for handled in (*CONTROL_SIGNALS, INTERRUPT):
        signal.signal(handled, lambda signo, frame: received.append(signo))
    # Blocked since the fork (supervise.py), so one sent meanwhile waits for this thread. From
    # now on this thread never blocks them: none can stay pending for libmilter's signal thread,
    # which would stop the listener with it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CONTROL_SIGNALS)
    listener = Listener(setup.listen_fd)
    setup.tally.balance = setup.balance if slot >= 0 else None
    before_sessions = sockets.socket_fds() or set()
    thread = threading.Thread(target=setup.run_libmilter, name="libmilter", daemon=True)
    thread.start()
    assert thread.ident is not None
    tid = thread.ident
    listener.interrupt = lambda: signal.pthread_kill(tid, INTERRUPT)
    if setup.balance is not None and slot >= 0:
        setup.balance.attach(slot, listener)
    with contextlib.suppress(OSError):
        os.write(ready, b"r")
        os.close(ready)
    _worker_started(seat)
    while thread.is_alive():
        select.select([wake_r], [], [], 1.0)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_r, 4096)
        while received:
            _on_signal(received.pop(0), setup, seat, listener, before_sessions)
    LOG.error("worker %d: libmilter stopped by itself", seat)
    return 70


def _on_signal(signo: int, setup: WorkerSetup, seat: int, listener: Listener,
               before_sessions: set[int]) -> None:
    if signo in DRAIN_SIGNALS:
        _drain(setup, seat, listener, before_sessions)
    elif signo == signal.SIGHUP:
        LOG.warning("worker %d ignores SIGHUP: send it to the supervisor (pid %d) to reload",
                    seat, os.getppid())
    elif signo == signal.SIGUSR1:
        LOG.info("worker %d (pid %d): %d connection(s) open, %d served%s", seat, os.getpid(),
                 setup.tally.open, setup.tally.total, ", holding back" if listener.holding else "")


def _worker_started(seat: int) -> None:
    """The place for per-worker set-up once it serves (metrics, say)."""
    LOG.debug("worker %d (pid %d) serving", seat, os.getpid())


def _drain(setup: WorkerSetup, seat: int, listener: Listener, before_sessions: set[int]) -> None:
    """Stop accepting, finish the connections open (up to the grace), exit."""
    if setup.balance is not None:
        setup.balance.leave()
    listener.close()
    # A listener that was already inside accept() may still add one: let it land first.
    time.sleep(0.1)
    deadline = time.monotonic() + setup.grace
    left = sockets.connections(before_sessions)
    if left:
        LOG.info("worker %d stopping: finishing %d connection(s)", seat, left)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = sockets.connections(before_sessions)
    if left:
        LOG.warning("worker %d: %d connection(s) still open after %.0f s; closing them",
                    seat, left, setup.grace)
    flush_recorders()  # DMARC report rows still queued reach the store (os._exit runs no atexit)
    exit_now(0)


def exit_now(code: int) -> None:
    """Leave the process at once (no interpreter shutdown under libmilter's threads), logs
    flushed."""
    for handler in logging.getLogger("mailwarden").handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(code)
