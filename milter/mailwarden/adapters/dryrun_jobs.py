"""dry-run on several CPUs: batches of messages handed out to worker processes, results in order.

Python runs one thread at a time per process, so the parallelism is processes. They are forked
after the runtime is built, so each inherits it (rule packs compiled, keys loaded, zones read)
once, instead of building its own, and keeps it for every batch it is given.

With N jobs on N CPUs, the CPU this process uses is taken from the jobs, so it does as little as
it can: it hands out batches of small items (a path, an mbox span: the jobs open and read the
messages), and gets back what the batch function returns (for dry-run, the reports already
rendered to bytes) to yield in order. No pool: no task or result threads here, one pipe per
job. Each job has a second batch queued behind the one it is working on, so it never waits for
this process; a job that finishes gets the next batch, and batches shrink at the end of the input
so that the last one does not keep one CPU busy while the others have nothing left. At most
OUT batches per job are out and not yet written, so a large mbox is not read far ahead of the output.

Where the kernel shares the CPUs per session (sched_autogroup, on by default in many
distributions), all the jobs together get one session's share when other sessions keep the CPUs
busy, however many there are (and a `nice 19` process in another session still takes a full
share): N jobs are then no faster than one. bench/dryrun_bench.py measures them against N
independent single-job commands at once (the ceiling), and prints the load it ran under.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BATCH = 64  # items per hand-out: one pipe round trip for 64 messages (about 30 ms of work)
LAST = 4  # the smallest batch, at the end of the input
AHEAD = 2  # batches in flight per job: the one it works on, and the next
# Batches per job out and not yet written: how far the others go on past one that is slow or not
# scheduled (under load 16 did better than 4 or 64, A/B in one run); about 3 MB of JSON for 2 jobs.
OUT = 16

# The batch function the jobs apply; set before the fork, so jobs inherit it with the runtime.
_work: Callable[[Any], Any] | None = None


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def batches(items: Iterable[T], jobs: int, size: int = BATCH) -> Iterator[list[T]]:
    """Lists of `size` items; at the end of the input, smaller ones (down to LAST), so that the
    jobs finish together: once what is left is known, a batch is an equal share of it among
    twice the jobs."""
    source = iter(items)
    ahead: deque[T] = deque(islice(source, size * jobs))
    while ahead:
        ended = len(ahead) < size * jobs
        take = min(size, max(LAST, math.ceil(len(ahead) / (2 * jobs)))) if ended else size
        yield [ahead.popleft() for _ in range(min(take, len(ahead)))]
        ahead.extend(islice(source, size * jobs - len(ahead)))


def ordered_batches(func: Callable[[list[T]], R], items: Iterable[T], jobs: int,
                    lost: Callable[[list[T], str], R]) -> Iterator[R]:
    """func over batches of items, in `jobs` processes, yielding the results in input order.

    With one job (or no fork on this platform) it runs here, one item per batch, as items come.
    `lost` gives the result of a batch whose job died before returning it (its messages are
    reported, a new job takes its place, the others go on).
    """
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for item in items:
            yield func([item])
        return
    global _work
    _work = func
    # Leave the runtime's objects out of the jobs' garbage collections: scanning them would copy
    # every page they sit on into each job, and cost time for nothing.
    gc.freeze()
    workers: list[_Job[T]] = []
    finished = False
    try:
        for _ in range(jobs):
            workers.append(_Job(workers))
        yield from _hand_out(workers, batches(items, jobs, BATCH), lost)
        finished = True
    finally:
        _work = None
        for job in workers:
            job.stop(finished)
        gc.unfreeze()


def _hand_out(workers: list[_Job[T]], source: Iterator[list[T]],
              lost: Callable[[list[T], str], R]) -> Iterator[R]:
    done: dict[int, R] = {}  # results come in any order, and go out in order
    sent = written = 0
    limit = OUT * len(workers)
    while True:
        for job in workers:
            while len(job.queued) < AHEAD and sent - written < limit:
                batch = next(source, None)
                if batch is None:
                    break
                job.send(sent, batch)
                sent += 1
        if written == sent:
            return
        ready = wait([job.conn for job in workers if job.queued])
        for i, job in enumerate(workers):
            if job.conn not in ready:
                continue
            try:
                result = job.conn.recv()
            except (EOFError, OSError):  # the job died: its batches are lost, a new one follows
                why = job.stop(False)
                for number, batch in job.queued:
                    done[number] = lost(batch, why)
                workers[i] = _Job(workers)
            else:
                done[job.queued.popleft()[0]] = result
        while written in done:
            yield done.pop(written)
            written += 1


class _Job(Generic[T]):
    """A worker process and its pipe, with the batches sent to it and not yet returned."""

    conn: Connection

    def __init__(self, others: list[_Job[T]]) -> None:
        ours, theirs = multiprocessing.Pipe()
        context = multiprocessing.get_context("fork")
        # This process's pipe ends are closed in the new job (its own, and the other jobs'): a
        # job must see its pipe close when this process closes it or goes away.
        self.process = context.Process(target=_serve, args=(theirs, [ours, *(job.conn for job in others)]),
                                       daemon=True)
        self.process.start()
        theirs.close()
        self.conn = ours
        self.queued: deque[tuple[int, list[T]]] = deque()

    def send(self, number: int, batch: list[T]) -> None:
        self.queued.append((number, batch))
        with contextlib.suppress(OSError):  # it died: its pipe says so when its result is read
            self.conn.send(batch)

    def stop(self, finished: bool) -> str:
        """End the job (it exits when its pipe closes; killed when the run did not finish);
        returns how it ended."""
        self.conn.close()
        if not finished and self.process.is_alive():
            self.process.terminate()
        self.process.join()
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"its job was killed by signal {-code}"
        return f"its job exited with status {code}"


def _serve(conn: Connection, inherited: list[Connection]) -> None:
    """A job: batches in, results out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C: the parent stops the jobs
    for other in inherited:
        other.close()
    assert _work is not None
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):  # the parent is done, or gone
            return
        result = _work(batch)
        try:
            conn.send(result)
        except OSError:  # the parent is gone: nobody to report to
            return
