"""dry-run on several CPUs: messages handed out to worker processes, results back in input order.

Python runs one thread at a time per process, so the parallelism is processes. They are forked
after the runtime is built, so each inherits it (rule packs compiled, keys loaded, zones read)
instead of building its own. Work goes out in batches (one pipe round trip per batch, not per
message), at most a few batches per worker ahead of the output, so a large mbox is not read into
memory ahead of what has been written.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BATCH = 64  # messages per hand-out: fewer pipe round trips; small enough to keep output flowing
AHEAD = 4  # batches per worker in flight

# The function the workers apply; set before the fork, so workers inherit it with the runtime.
_work: Callable[[Any], Any] | None = None


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ordered_map(func: Callable[[T], R], items: Iterable[T], jobs: int) -> Iterator[R]:
    """func over items, in `jobs` processes, yielding the results in the order of `items`.

    With one job (or no fork on this platform) it is a plain map in this process.
    """
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(func, items)
        return
    global _work
    _work = func
    # Leave the runtime's objects out of the workers' garbage collections: scanning them would
    # copy every page they sit on into each worker, and cost time for nothing.
    gc.freeze()
    source = iter(items)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pending: deque[Any] = deque()

            def submit() -> bool:
                batch = list(islice(source, BATCH))
                if batch:
                    pending.append(pool.apply_async(_run_batch, (batch,)))
                return bool(batch)

            while len(pending) < jobs * AHEAD and submit():
                pass
            while pending:
                results = pending.popleft().get()
                submit()
                yield from results
    finally:
        _work = None
        gc.unfreeze()


def _run_batch(batch: list[Any]) -> list[Any]:
    assert _work is not None
    return [_work(item) for item in batch]
