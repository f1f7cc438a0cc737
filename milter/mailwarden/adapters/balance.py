"""Connections shared out evenly among the worker processes.

All workers wait in poll() on one listening socket, and Linux wakes its pollers last-come,
first-served: the worker that accepted the last connection polls again first and so is first in
line for the next one. Left alone, one worker gets nearly every connection (measured: all 10
of 10 connections opened 20 ms apart), and the other cores idle.

libmilter's listener cannot be told to hold back, but each time round its loop it polls and
accepts on whatever file its descriptor number names. So a worker holding more connections than
the least busy worker points that number at a listening socket of its own that nobody connects
to, and points it back at the real socket once the others catch up. A poll() already waiting
keeps waiting on the file it started with (Linux looks the number up again on each wake-up, but
waits only on the files of its first pass), so pointing it back also interrupts the listener
with a signal; libmilter polls again on EINTR. The counts live in memory shared by all workers;
a worker whose count rises wakes, through a pipe each, those holding back with no more
connections than it now has. A fall wakes nobody: a worker it leaves busier than the least busy
holds back at its own next connection (or recheck). Waking it would cost its connection threads
Python's lock at every close (measured: 1.2 wake-ups and 13 lock hand-offs per connection with a
connection per message; 0.26 and 8 without, 25-30 us of CPU less per connection). Each also
looks again every second, so a wake-up missed in a race costs at most a second of imbalance,
never a stall: the least busy worker always accepts. The real socket is
non-blocking, so a worker that loses the race for a connection goes back to poll() (libmilter
retries on EAGAIN) instead of waiting in accept().

What this cannot even out: connections that arrive in the same instant. The first worker to
wake accepts them all before any of its Python code runs, so before its count can change.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import threading
from collections.abc import Callable

ABSENT = 2**62
"""The count of a slot with no live worker: never the least busy."""
RECHECK = 1.0
"""Seconds between a worker's own looks at the counts, wake-up or not."""


class Balance:
    """Built in the supervisor before the fork; each worker then calls attach() once, and
    opened()/closed() as connections come and go."""

    def __init__(self, slots: int, listen_fd: int) -> None:
        self._slots = slots
        self._fd = listen_fd
        self._shared = mmap.mmap(-1, 16 * slots)  # anonymous and MAP_SHARED: survives fork() shared
        view = memoryview(self._shared).cast("q")
        self._counts = view[:slots]  # open connections per slot
        self._holding = view[slots:]  # 1 while that slot's worker holds back
        for slot in range(slots):
            self._counts[slot] = ABSENT
        self._pipes = [os.pipe() for _ in range(slots)]
        for _, write_end in self._pipes:
            os.set_blocking(write_end, False)
        os.set_blocking(listen_fd, False)
        # Set in the worker by attach().
        self._slot = -1
        self._lock = threading.Lock()
        self._real = -1
        self._idle: socket.socket | None = None
        self._interrupt: Callable[[], None] = lambda: None

    # -- supervisor side ------------------------------------------------------------------------

    def vacate(self, slot: int) -> None:
        """A worker died: its stale count must not make the others hold back."""
        self._counts[slot] = ABSENT
        self._holding[slot] = 0
        self._notify(slot, rose=True)

    # -- worker side ----------------------------------------------------------------------------

    def attach(self, slot: int, interrupt: Callable[[], None]) -> None:
        """Take `slot`; interrupt() must break the listener out of poll() with EINTR."""
        self._slot = slot
        self._interrupt = interrupt
        self._real = os.dup(self._fd)
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.bind("")  # Linux picks a fresh abstract address
        idle.listen(8)
        idle.setblocking(False)
        self._idle = idle
        with self._lock:
            self._counts[slot] = 0
            self._rebalance()
        self._notify(slot, rose=False)
        threading.Thread(target=self._listen, name="balance", daemon=True).start()

    def opened(self) -> None:
        self._change(+1)

    def closed(self) -> None:
        self._change(-1)

    def release(self) -> None:
        """Stop holding back for good (the worker is stopping and must see its wake-up)."""
        with self._lock:
            if self._slot >= 0 and self._holding[self._slot]:
                self._swap_in()
            self._slot = -1

    def _change(self, delta: int) -> None:
        with self._lock:
            slot = self._slot
            if slot < 0:  # not attached, or released
                return
            self._counts[slot] += delta
            self._rebalance()
        self._notify(slot, rose=delta > 0)

    def _listen(self) -> None:
        read_end = self._pipes[self._slot][0]
        while self._slot >= 0:
            if select.select([read_end], [], [], RECHECK)[0]:
                os.read(read_end, 4096)  # one read takes every wake-up written so far
            with self._lock:
                if self._slot >= 0:
                    self._rebalance()

    def _rebalance(self) -> None:
        mine = self._counts[self._slot]
        least = min((self._counts[s] for s in range(self._slots) if s != self._slot), default=ABSENT)
        holding = self._holding[self._slot] == 1
        if mine > least and not holding:
            self._swap_out()
        elif holding and mine <= least:
            self._swap_in()

    def _swap_out(self) -> None:
        # A listener waiting on the real socket may still take one more connection.
        assert self._idle is not None
        os.dup2(self._idle.fileno(), self._fd, inheritable=False)
        self._holding[self._slot] = 1

    def _swap_in(self) -> None:
        os.dup2(self._real, self._fd, inheritable=False)
        self._holding[self._slot] = 0
        # Else a listener waiting on the idle socket would look again only at libmilter's 5 s
        # poll timeout, with connections queued meanwhile.
        self._interrupt()

    def _notify(self, changed: int, rose: bool) -> None:
        count = self._counts[changed]
        for slot, (_, write_end) in enumerate(self._pipes):
            if slot == changed:
                continue
            # A rise can only let a worker that holds back accept again, and only one with no
            # more connections than the new count. A fall could make a busier worker hold back,
            # but that one finds out itself at its next connection (or within RECHECK): waking
            # it costs its connection threads Python's lock, at every close.
            if rose and self._holding[slot] == 1 and self._counts[slot] <= count:
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                    os.write(write_end, b".")
