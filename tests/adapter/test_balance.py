"""balance.py's decisions, without processes: who holds back, whom a count change wakes, and
the shared counts as two workers in one process see them."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable

import pytest

from mailwarden.adapters.process.balance import ABSENT, Balance, should_hold, to_wake


@pytest.mark.parametrize(("mine", "others", "hold"), [
    (0, [0, 0], False),        # all level: everyone accepts
    (1, [0, 3], True),         # someone less busy: let them take the next one
    (1, [1, 1], False),        # a tie accepts, so the least busy always include an acceptor
    (5, [ABSENT, ABSENT], False),  # alone (the others dead or stopping)
    (0, [], False),            # a single slot
    (3, [ABSENT, 2], True),    # a dead slot's stale count does not count
])
def test_a_worker_holds_back_only_when_another_is_less_busy(mine: int, others: list[int], hold: bool) -> None:
    assert should_hold(mine, others) is hold


def test_the_least_busy_worker_never_holds_back() -> None:
    for counts in ([0, 1, 2], [2, 2, 2], [5, 0, 0], [3, 1, 4, 1]):
        accepting = [not should_hold(c, counts[:i] + counts[i + 1:]) for i, c in enumerate(counts)]
        assert any(accepting), counts
        assert all(accepting[i] for i, c in enumerate(counts) if c == min(counts)), counts


def test_a_rise_wakes_only_those_it_can_let_accept_and_a_fall_nobody() -> None:
    counts = [2, 2, 3, 1]
    holding = [True, False, True, False]
    assert to_wake(1, rose=True, counts=counts, holding=holding) == [0]  # slot 2 still has more
    assert to_wake(1, rose=False, counts=counts, holding=holding) == []
    assert to_wake(3, rose=False, counts=counts, holding=holding) == []
    vacated = [2, ABSENT, 3, 1]  # a dead or stopping slot: every holder may look again
    assert to_wake(1, rose=True, counts=vacated, holding=holding) == [0, 2]


class FakeListener:
    """The Listener's interface, recording instead of dup2-ing a descriptor."""

    def __init__(self) -> None:
        self.holding = False

    def hold(self) -> None:
        self.holding = True

    def resume(self) -> None:
        self.holding = False


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5  # each worker also looks again every second
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_two_workers_share_counts_and_wake_each_other() -> None:
    balance = Balance(4)
    # What fork() gives each worker: its own object, the same shared counts and pipes.
    first, second = copy.copy(balance), copy.copy(balance)
    for b in (first, second):
        b._lock = threading.Lock()
    one, two = FakeListener(), FakeListener()
    first.attach(0, one)  # type: ignore[arg-type]
    second.attach(1, two)  # type: ignore[arg-type]
    first.opened()
    assert one.holding and not two.holding  # 1 against 0
    second.opened()
    _until(lambda: not one.holding, "the first to accept again once the second caught up")
    second.opened()
    _until(lambda: two.holding and not one.holding, "the second to hold back")
    second.leave()  # stopping: it no longer counts, so nobody waits for it
    first.opened()
    first.opened()
    assert not one.holding
    first.leave()
