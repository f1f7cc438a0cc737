"""Recording rows without slowing or failing mail.

`record` only puts the row on a bounded in-memory queue; a background thread writes what it
finds there in batches. When the queue is full or the store fails, rows are dropped and counted
(`counters()`), with at most one log line a minute: never retried, never a reason to tempfail.

Each `mailwarden serve` worker is a forked process: the queue and the thread belong to the
process that first records, and a process forked later starts its own on its first row.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import threading
import time
import weakref
from collections.abc import Callable

from mailwarden.core.decisions import Outcome
from mailwarden.core.model import Transaction
from mailwarden.reports.failure import FailureCase, FailureSender, failure_case
from mailwarden.reports.row import Row, row_from
from mailwarden.reports.store import Store, open_store

LOG = logging.getLogger("mailwarden.reports")

BATCH = 5000
PENDING_FAILURES = 100  # failure reports waiting for the writer, at most (each may hold a message)
GATHER = 1.0  # seconds the writer lets rows gather after the first: one insert a second, not one a row
RETRY_OPEN = 10.0  # seconds between attempts to reach a store that failed
LOG_EVERY = 60.0

_LIVE: weakref.WeakSet[Recorder] = weakref.WeakSet()


def counters() -> dict[str, int]:
    """This process's reporting counters (rows written, dropped, queued), for metrics."""
    total = {"reports_rows_written": 0, "reports_rows_dropped": 0, "reports_rows_queued": 0}
    for recorder in list(_LIVE):
        for key, value in recorder.counters().items():
            total[key] = total.get(key, 0) + value
    return total


def flush_recorders(timeout: float = 2.0) -> None:
    """Write what this process's recorders hold, within `timeout`: called as a worker stops
    (it leaves with os._exit, so no atexit handler would run)."""
    deadline = time.monotonic() + timeout
    for recorder in list(_LIVE):
        recorder.close(max(0.0, deadline - time.monotonic()))


class Recorder:
    def __init__(self, url: str, queue_size: int = 10000, block: bool = False,
                 opener: Callable[[str], Store] = open_store, host: str = "",
                 failures: FailureSender | None = None, failure_include: str = "headers") -> None:
        """`block`: wait for room instead of dropping (dry-run's backfill, not the mail path).
        `failures`: also send failure reports, from the writer thread."""
        self.url = url
        self.queue_size = queue_size
        self.block = block
        self.host = host or socket.gethostname()
        self._opener = opener
        self._lock = threading.Lock()
        self._pid = 0
        self.failures = failures
        self.failure_include = failure_include
        self._queue: queue.Queue[Row | FailureCase | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.written = 0
        self.dropped = 0
        self._failures_seen: dict[tuple[str, int], int] = {}
        self._pending_failures = 0
        self._last_log = 0.0
        self._unlogged = 0

    # -- the mail path -----------------------------------------------------------------------

    def record_outcome(self, tx: Transaction, outcome: Outcome, when: float | None = None) -> None:
        """Record the message's DMARC evaluation, if it had one. Never raises."""
        try:
            row = row_from(tx, outcome, time.time() if when is None else when)
            if row is not None:
                self.record(row)
                if self.failures is not None and self._failure_wanted(row):
                    case = failure_case(row, tx, outcome, self.failure_include)
                    if case is not None and self.record(case):
                        self._pending_failures += 1
        except Exception:  # reporting must never cost a message
            self._drop(1, "cannot record a row", exc_info=True)

    def _failure_wanted(self, row: Row) -> bool:
        """A cheap limit before copying a message: this process's own count per domain and hour
        (the store's count, shared by all, is the one that decides), and a bound on those waiting."""
        if self.failures is None or self._pending_failures >= PENDING_FAILURES:
            return False
        key = (row.policy_domain, row.time // 3600)
        seen = self._failures_seen.get(key, 0)
        if seen >= self.failures.section.failure_rate:
            return False
        if len(self._failures_seen) > 10000:
            self._failures_seen.clear()
        self._failures_seen[key] = seen + 1
        return True

    def record(self, row: Row | FailureCase) -> bool:
        """Queue a row (or a failure report); False when the queue was full and it was dropped."""
        if self._pid != os.getpid():
            self._start()
        try:
            self._queue.put(row, block=self.block)
        except queue.Full:
            self._drop(1, f"report queue full ({self.queue_size} rows)")
            return False
        return True

    def counters(self) -> dict[str, int]:
        """For metrics: rows written to the store, rows dropped, rows waiting (this process)."""
        out = {"reports_rows_written": self.written, "reports_rows_dropped": self.dropped,
               "reports_rows_queued": self._queue.qsize()}
        if self.failures is not None:
            out["reports_failure_sent"] = self.failures.sent
            out["reports_failure_limited"] = self.failures.limited
        return out

    # -- the writer --------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # A forked child inherits the parent's queue object but not its thread: start afresh.
            self._queue = queue.Queue(self.queue_size)
            self._closing = threading.Event()
            self._thread = threading.Thread(target=self._run, name="reports-writer", daemon=True)
            self._thread.start()
            self._pid = os.getpid()
            _LIVE.add(self)
            atexit.register(self.close)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within `timeout`) and stop the writer."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._closing.set()
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def _run(self) -> None:
        store: Store | None = None
        failed_at = 0.0
        stop = False
        while not stop:
            taken, stop = self._take()
            if not taken:
                continue
            batch = [r for r in taken if isinstance(r, Row)]
            cases = [c for c in taken if isinstance(c, FailureCase)]
            self._pending_failures -= len(cases)
            if store is None and time.monotonic() - failed_at >= RETRY_OPEN:
                try:
                    store = self._opener(self.url)
                except Exception as exc:
                    failed_at = time.monotonic()
                    self._drop(len(batch), f"report store unavailable: {exc}")
                    continue
            if store is None:
                self._drop(len(batch), "report store unavailable")
                continue
            try:
                store.insert(batch, self.host)
                self.written += len(batch)
            except Exception as exc:
                store.close()
                store, failed_at = None, 0.0  # reopen at the next batch
                self._drop(len(batch), f"cannot write to the report store: {exc}")
                continue
            self._send_failures(store, cases)
        if store is not None:
            store.close()

    def _send_failures(self, store: Store, cases: list[FailureCase]) -> None:
        for case in cases:
            if self.failures is None:
                return
            try:
                for note in self.failures.send(case, store.count_failure):
                    LOG.info("%s", note)
            except Exception as exc:  # SMTP, DNS: a failure report is never retried
                LOG.warning("cannot send a DMARC failure report for %s: %s", case.row.policy_domain, exc)

    def _take(self) -> tuple[list[Row | FailureCase], bool]:
        """Up to BATCH rows: waits for the first, lets more gather, then takes what is there.

        Writing each row as it comes would wake this thread for every message, and each wake-up
        takes Python's lock from the threads serving mail."""
        first = self._queue.get()
        if first is None:
            return [], True
        self._closing.wait(GATHER)
        batch: list[Row | FailureCase] = [first]
        while len(batch) < BATCH:
            try:
                row = self._queue.get_nowait()
            except queue.Empty:
                break
            if row is None:
                return batch, True
            batch.append(row)
        return batch, False

    def _drop(self, count: int, why: str, exc_info: bool = False) -> None:
        if not count:
            return
        self.dropped += count
        self._unlogged += count
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY or self._last_log == 0.0:
            LOG.warning("DMARC report rows dropped: %d (%d in all): %s", self._unlogged, self.dropped, why,
                        exc_info=exc_info)
            self._last_log, self._unlogged = now, 0
