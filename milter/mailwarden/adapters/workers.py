"""Worker processes: one listening socket, served by N forked copies of the milter.

libmilter runs one thread per connection, but in one Python process every callback of every
thread takes the same GIL: past a few connections the threads queue for it, and the hand-offs
cost more CPU than the callbacks (perf put a quarter of the server's samples in futex wake-ups
at 32 connections). Forked workers each have their own GIL, so Python work spreads over the
cores, the way Postfix, Rspamd and Amavis spread theirs over processes.

The parent opens the socket, forks the workers, and then only supervises: it restarts a worker
that dies, passes SIGTERM/SIGINT/SIGHUP on, and removes the socket once every worker is gone.
Nothing here knows about libmilter; the caller hands in what a worker runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable

from mailwarden import metrics

LOG = logging.getLogger("mailwarden.workers")

MAX_AUTO = 8
""""auto" gives one worker per CPU, up to this many: past it the DNS caches, one per worker,
cost more than the extra cores give."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE = 10.0
"""Seconds the workers get to stop before they are killed."""
RESTART_DELAY = 1.0
"""A worker that dies within this many seconds of its start is restarted only after as long,
so that one that cannot start does not spin."""

_PR_SET_PDEATHSIG = 1


def worker_count(setting: int | str) -> int:
    """The number of workers for the `[milter] workers` setting ("auto" or a count)."""
    if setting == "auto":
        return max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO))
    return int(setting)


def pin_to_cpu(slot: int) -> int:
    """Keep the calling thread, and every thread it starts from now on, on one CPU: the
    slot-th of those allowed (wrapping round). Returns that CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[slot % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    return cpu


def supervise(
    count: int,
    run_worker: Callable[[int], int],
    wake: Callable[[], None],
    vacate: Callable[[int], None] = lambda slot: None,
) -> int:
    """Fork `count` workers that each call run_worker(slot), and look after them until told to stop.

    Slots run from 0 to count - 1; a replacement worker takes the slot of the one it replaces,
    and vacate(slot) is called as soon as a worker is found dead.

    Returns 0 when the workers stopped on a signal. `wake` pokes the listening socket, so that
    workers waiting in poll() look at their stop flag at once rather than at its next timeout.
    """
    watched = {*STOP_SIGNALS, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    parent = os.getpid()
    workers: dict[int, tuple[float, int]] = {}  # pid -> (start time, slot)
    restart_at: list[tuple[float, int]] = []    # (when, slot) of each replacement due

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            _run_child(parent, old_mask, lambda: run_worker(slot))
        workers[pid] = (time.monotonic(), slot)

    for slot in range(count):
        spawn(slot)
    LOG.info("started %d worker%s", count, "" if count == 1 else "s")
    stopping = 0.0
    try:
        while workers or (restart_at and not stopping):
            now = time.monotonic()
            if stopping:
                timeout: float | None = 0.2
            elif restart_at:
                timeout = max(0.0, min(restart_at)[0] - now)
            else:
                timeout = None
            info = (signal.sigtimedwait(watched, timeout) if timeout is not None
                    else signal.sigwaitinfo(watched))
            if info is not None and info.si_signo in STOP_SIGNALS and not stopping:
                LOG.info("stopping")
                stopping = time.monotonic()
                restart_at.clear()
                # libmilter's own SIGHUP also stops, but without our prompt wake-up.
                _signal_all(workers, signal.SIGINT if info.si_signo == signal.SIGINT else signal.SIGTERM)
            for pid, (started, slot), status in _reap(workers):
                vacate(slot)
                metrics.worker_gone(pid)
                if stopping:
                    if status != 0:  # stopping is a clean exit; anything else is worth a look
                        LOG.warning("worker %d %s while stopping", pid, _describe(status))
                    continue
                LOG.error("worker %d %s; starting another", pid, _describe(status))
                metrics.worker_restarted()
                lived = time.monotonic() - started
                delay = RESTART_DELAY if lived < RESTART_DELAY else 0.0
                restart_at.append((time.monotonic() + delay, slot))
            now = time.monotonic()
            for due in [r for r in restart_at if r[0] <= now]:
                restart_at.remove(due)
                spawn(due[1])
            if stopping and workers:
                wake()
                if time.monotonic() - stopping > STOP_GRACE:
                    LOG.warning("%d worker(s) did not stop in %.0f s; killing them", len(workers), STOP_GRACE)
                    _signal_all(workers, signal.SIGKILL)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return 0


def _run_child(parent: int, old_mask: set[int | signal.Signals], run_worker: Callable[[], int]) -> None:
    """The forked side: never returns into the parent's loop."""
    code = 70
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        _die_with(parent)
        code = run_worker()
    except BaseException:
        LOG.exception("worker failed")
    finally:
        for handler in logging.getLogger("mailwarden").handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(code)


def _die_with(parent: int) -> None:
    """A worker whose supervisor is killed (SIGKILL, OOM) dies too, rather than serve on unseen.

    SIGKILL, not SIGTERM: when the service is killed, Postfix must see it down at once and apply
    milter_default_action, not find a worker still answering for a moment.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:      # it died before prctl took effect
        os._exit(1)


def _reap(workers: dict[int, tuple[float, int]]) -> list[tuple[int, tuple[float, int], int]]:
    gone = []
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid in workers:
            gone.append((pid, workers.pop(pid), status))
    return gone


def _signal_all(workers: dict[int, tuple[float, int]], signo: int) -> None:
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signo)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
