"""Connections shared out evenly among the worker processes.

All workers wait in poll() on one listening socket, and Linux wakes its pollers last-come,
first-served: the worker that accepted the last connection polls again first and so is first in
line for the next one. Left alone, one worker gets nearly every connection (measured: all 10
of 10 connections opened 20 ms apart), and the other cores idle.

So a worker holding more connections than the least busy worker holds back (listener.py: its
listener waits on an idle socket of its own) until the others catch up. The counts live in
memory shared by all workers; a worker whose count rises wakes, through a pipe each, those
holding back with no more connections than it now has. A fall wakes nobody: a worker it leaves
busier than the least busy holds back at its own next connection (or recheck). Waking it would
cost its connection threads Python's lock at every close (measured with a connection per
message: 1.2 wake-ups and 13 lock hand-offs per connection, against 0.26 and 8; 25-30 us of CPU
a connection). Each also looks again every second, so a wake-up missed in a race costs at most
a second of imbalance, never a stall: the least busy worker always accepts.

The decisions are the pure functions `should_hold` and `to_wake`; the class keeps the counts.

What this cannot even out: connections that arrive in the same instant. The first worker to
wake accepts them all before any of its Python code runs, so before its count can change.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import threading
from collections.abc import Sequence

from mailwarden.adapters.process.listener import Listener

ABSENT = 2**62
"""The count of a slot with no live worker, or one that is stopping: never the least busy."""
RECHECK = 1.0
"""Seconds between a worker's own looks at the counts, wake-up or not."""


def should_hold(mine: int, others: Sequence[int]) -> bool:
    """Whether a worker with `mine` connections holds back, given the other slots' counts."""
    return mine > min(others, default=ABSENT)


def to_wake(changed: int, rose: bool, counts: Sequence[int], holding: Sequence[bool]) -> list[int]:
    """The slots to wake after slot `changed`'s count moved: after a rise, those holding back
    with no more connections than it now has (only they can be let accept again). A fall could
    make a busier slot hold back, but that one sees it at its own next connection."""
    if not rose:
        return []
    count = counts[changed]
    return [slot for slot, held in enumerate(holding) if slot != changed and held and counts[slot] <= count]


class Balance:
    """Built in the supervisor before the fork, with a slot per worker that may run at once;
    each worker then calls attach() once, and opened()/closed() as connections come and go."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._shared = mmap.mmap(-1, 16 * slots)  # anonymous and MAP_SHARED: survives fork() shared
        view = memoryview(self._shared).cast("q")
        self._counts = view[:slots]  # open connections per slot
        self._holding = view[slots:]  # 1 while that slot's worker holds back
        for slot in range(slots):
            self._counts[slot] = ABSENT
        self._pipes = [os.pipe() for _ in range(slots)]
        for _, write_end in self._pipes:
            os.set_blocking(write_end, False)
        # Set in the worker by attach().
        self._slot = -1
        self._lock = threading.Lock()
        self._listener: Listener | None = None

    @property
    def slots(self) -> int:
        return self._slots

    # -- supervisor side ------------------------------------------------------------------------

    def vacate(self, slot: int) -> None:
        """A worker died: its stale count must not make the others hold back."""
        self._counts[slot] = ABSENT
        self._holding[slot] = 0
        self._notify(slot, rose=True)

    # -- worker side ----------------------------------------------------------------------------

    def attach(self, slot: int, listener: Listener) -> None:
        """Take `slot`, steering `listener`."""
        self._slot = slot
        self._listener = listener
        with self._lock:
            self._counts[slot] = 0
            self._rebalance()
        self._notify(slot, rose=False)
        threading.Thread(target=self._listen, name="balance", daemon=True).start()

    def opened(self) -> None:
        self._change(+1)

    def closed(self) -> None:
        self._change(-1)

    def leave(self) -> None:
        """Stop steering for good (the worker is stopping): the others no longer wait for it."""
        with self._lock:
            slot, self._slot = self._slot, -1
        if slot >= 0:
            self.vacate(slot)

    def _change(self, delta: int) -> None:
        with self._lock:
            slot = self._slot
            if slot < 0:  # not attached, or left
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
        slot, listener = self._slot, self._listener
        assert listener is not None
        others = [self._counts[s] for s in range(self._slots) if s != slot]
        hold = should_hold(self._counts[slot], others)
        if hold and not listener.holding:
            listener.hold()
        elif listener.holding and not hold:
            listener.resume()
        self._holding[slot] = int(listener.holding)

    def _notify(self, changed: int, rose: bool) -> None:
        holding = [self._holding[s] == 1 for s in range(self._slots)]
        for slot in to_wake(changed, rose, list(self._counts), holding):
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                os.write(self._pipes[slot][1], b".")
