"""The supervisor: forks the workers and looks after them; it never handles mail.

It restarts a worker that dies, stops them all on SIGTERM/SIGINT (each drains: workers.py),
reloads on SIGHUP or when its watch sees changed rule packs (a new worker on the new
configuration starts before each old one stops taking connections; the old one finishes its
connections), and on SIGUSR1 has each worker log
its counts. Nothing here knows about libmilter; the caller hands in what a worker runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailwarden import metrics
from mailwarden.adapters.process.privileges import die_with

LOG = logging.getLogger("mailwarden.workers")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WATCHED = {*STOP_SIGNALS, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD}
CHILD_BLOCKED = {*STOP_SIGNALS, signal.SIGHUP, signal.SIGUSR1}
RESTART_DELAY = 1.0
"""A worker that dies within this many seconds of its start is restarted only after as long,
so that one that cannot start does not spin."""
READY_TIMEOUT = 10.0
"""Seconds a new worker has to start serving during a reload before the old one stops anyway."""

RunWorker = Callable[[int, int, int], int]
"""run_worker(seat, slot, ready_fd): a worker's life in the forked child; writes to ready_fd
once it serves."""


@dataclass
class Worker:
    pid: int
    seat: int  # 0 to count - 1: which CPU, and which worker a replacement replaces
    slot: int  # its place in the balance's shared counts (two per seat, for reloads), or -1
    started: float = field(default_factory=time.monotonic)
    draining: bool = False


@dataclass
class Supervisor:
    count: int
    run_worker: RunWorker
    grace: float
    """Seconds the workers get to drain on a stop before they are killed."""
    vacate: Callable[[int], None] = lambda slot: None
    """Called with a dead worker's slot at once."""
    reload: Callable[[], bool] = lambda: False
    """Installs the new runtime for the next forks; False (having logged why) keeps the old."""
    stopping_hook: Callable[[], None] = lambda: None
    """Called once when a stop begins (the socket file goes, so Postfix's next connect fails fast)."""
    watch: Callable[[], bool] = lambda: False
    """Asked every `watch_interval()` seconds: True reloads as SIGHUP does (changed rule packs)."""
    watch_interval: Callable[[], float] = lambda: 0.0
    """Seconds between watches; 0: never (read again after each watch, as a reload may change it)."""
    workers: dict[int, Worker] = field(default_factory=dict)
    _parent: int = 0
    _old_mask: set[int | signal.Signals] = field(default_factory=set)
    _restart_at: list[tuple[float, int]] = field(default_factory=list)  # (when, seat)
    _stopping: float = 0.0
    _ready_pipes: dict[int, int] = field(default_factory=dict)  # pid -> read end, until it exits
    _next_watch: float = 0.0

    def run(self) -> int:
        """Fork the workers, then look after them until they all stopped on a signal."""
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        self._parent = os.getpid()
        self._next_watch = time.monotonic() + self.watch_interval()
        try:
            for seat in range(self.count):
                self._spawn(seat)
            LOG.info("started %d worker%s", self.count, "" if self.count == 1 else "s")
            while self.workers or (self._restart_at and not self._stopping):
                info = self._wait()
                if info is not None:
                    self._on_signal(info.si_signo)
                self._reap()
                self._restart_due()
                self._watch_due()
                if self._stopping and time.monotonic() - self._stopping > self.grace + 2:
                    LOG.warning("%d worker(s) did not stop in %.0f s; killing them",
                                len(self.workers), self.grace)
                    self._signal_all(signal.SIGKILL)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)
        return 0

    def _wait(self) -> signal.struct_siginfo | None:
        if self._stopping:
            return signal.sigtimedwait(WATCHED, 0.2)
        deadlines = [when for when, _ in self._restart_at]
        if self.watch_interval() > 0:
            deadlines.append(self._next_watch)
        if deadlines:
            return signal.sigtimedwait(WATCHED, max(0.0, min(deadlines) - time.monotonic()))
        return signal.sigwaitinfo(WATCHED)

    def _on_signal(self, signo: int) -> None:
        if signo in STOP_SIGNALS and not self._stopping:
            LOG.info("stopping")
            self._stopping = time.monotonic()
            self._restart_at.clear()
            self.stopping_hook()
            self._signal_all(signal.SIGTERM)
        elif signo == signal.SIGHUP and not self._stopping:
            LOG.info("reloading")
            self._reload()
        elif signo == signal.SIGUSR1:
            LOG.info("supervisor (pid %d): %s", os.getpid(), ", ".join(
                f"worker {w.seat} pid {w.pid}{' (stopping)' if w.draining else ''}"
                for w in sorted(self.workers.values(), key=lambda w: (w.seat, w.started))))
            self._signal_all(signal.SIGUSR1)

    def _watch_due(self) -> None:
        interval = self.watch_interval()
        if interval <= 0 or self._stopping or time.monotonic() < self._next_watch:
            return
        if self.watch():
            LOG.info("rule packs changed: reloading")
            self._reload()
        self._next_watch = time.monotonic() + self.watch_interval()

    def _reload(self) -> None:
        if self.reload():
            self._replace_all()

    def _replace_all(self) -> None:
        """One by one: the new worker serves before the old one stops taking connections."""
        for old in sorted((w for w in self.workers.values() if not w.draining), key=lambda w: w.seat):
            new = self._spawn(old.seat)
            if not self._await_ready(new):
                self._drain(new)  # dead or stuck: not restarted; the old workers keep serving
                LOG.error("reload: a new worker did not start; the old workers keep serving")
                return
            self._drain(old)
        # A seat whose worker had died and waits for its restart gets the new runtime anyway.
        LOG.info("reloaded: %d new worker%s", self.count, "" if self.count == 1 else "s")

    def _drain(self, worker: Worker) -> None:
        worker.draining = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGTERM)

    def _spawn(self, seat: int) -> Worker:
        used = {w.slot for w in self.workers.values()}
        # Two per seat cover a reload; past that (reloads faster than drains) a worker goes
        # without a slot, and accepts without holding back.
        slot = next((s for s in range(2 * self.count) if s not in used), -1)
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            self._child(lambda: self.run_worker(seat, slot, ready_w))
        os.close(ready_w)
        worker = self.workers[pid] = Worker(pid, seat, slot)
        self._ready_pipes[pid] = ready_r
        _worker_started(worker)
        return worker

    def _await_ready(self, worker: Worker) -> bool:
        """Whether the worker serves: it says so on its pipe, or dies (the pipe's end closes), or
        says nothing for READY_TIMEOUT seconds."""
        fd = self._ready_pipes[worker.pid]
        if not select.select([fd], [], [], READY_TIMEOUT)[0]:
            LOG.warning("worker %d (pid %d) not serving after %.0f s", worker.seat, worker.pid, READY_TIMEOUT)
            return False
        try:
            return os.read(fd, 1) == b"r"
        except OSError:
            return False

    def _child(self, run: Callable[[], int]) -> None:
        """The forked side: never returns into the supervisor's loop."""
        code = 70
        try:
            # The stop, reload and count signals stay blocked until the worker has its handlers.
            signal.pthread_sigmask(signal.SIG_SETMASK, {*self._old_mask, *CHILD_BLOCKED})
            for fd in self._ready_pipes.values():
                os.close(fd)
            # A worker whose supervisor is killed (SIGKILL, OOM) dies too, rather than serve on
            # unseen; by SIGKILL, so that Postfix sees it down at once.
            die_with(self._parent)
            # Out of the supervisor's process group: a terminal's ^C (SIGINT to the group) reaches
            # the supervisor alone, which then stops the workers in order.
            os.setpgid(0, 0)
            code = run()
        except BaseException:
            LOG.exception("worker failed")
        finally:
            for handler in logging.getLogger("mailwarden").handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            os._exit(code)

    def _reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            with contextlib.suppress(OSError):
                os.close(self._ready_pipes.pop(pid))
            if worker.slot >= 0:
                self.vacate(worker.slot)
            _worker_exited(worker, status)
            if self._stopping or worker.draining:
                if status != 0:  # a drain ends in a clean exit; anything else is worth a look
                    LOG.warning("worker %d %s while stopping", pid, _describe(status))
                continue
            LOG.error("worker %d %s; starting another", pid, _describe(status))
            metrics.worker_restarted()
            delay = RESTART_DELAY if time.monotonic() - worker.started < RESTART_DELAY else 0.0
            self._restart_at.append((time.monotonic() + delay, worker.seat))

    def _restart_due(self) -> None:
        now = time.monotonic()
        for due in [r for r in self._restart_at if r[0] <= now]:
            self._restart_at.remove(due)
            if not self._stopping:
                self._spawn(due[1])

    def _signal_all(self, signo: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signo)


def _worker_started(worker: Worker) -> None:
    """The place for supervisor-side bookkeeping of a new worker (metrics, say)."""
    LOG.debug("worker %d started: pid %d, slot %d", worker.seat, worker.pid, worker.slot)


def _worker_exited(worker: Worker, status: int) -> None:
    """The place for supervisor-side bookkeeping of a worker gone (metrics, say)."""
    LOG.debug("worker %d (pid %d) %s", worker.seat, worker.pid, _describe(status))
    metrics.worker_gone(worker.pid)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
