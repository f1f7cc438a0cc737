"""The per-message rule budget and the rules put aside after repeated regex timeouts (issue 17).

A real catastrophic pattern, `(a|aa)+$` on a long run of a's ending in b, makes each lookup hit
the regex timeout. No assertion is on time: each timeout costs at least `[rules] timeout`, so a
budget bounds how many can happen in one message, whatever the machine's load.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.rules.helpers import run, runtime, transaction, write_packs

from mailwarden.core.decisions import Action
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.session import COUNTS, PENALTIES, Meter, Penalties, Pending, Session

PACK = "header_checks/10-redos.pcre"
RULES = """\
/^X-Bad: (a|aa)+$/      REJECT catastrophic
/^Subject: stop$/       REJECT stopped
"""
BAD = ("X-Bad", " " + "a" * 40 + "b")
TIMEOUT = 0.02


@pytest.fixture(autouse=True)
def fresh_penalties() -> Iterator[None]:
    PENALTIES.clear()
    yield
    PENALTIES.clear()


def timeouts_in(notes: tuple[str, ...] | list[str]) -> int:
    return sum("regex timeout" in n for n in notes)


def test_a_message_stops_matching_once_its_budget_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PENALTIES, "strikes", 10**6)  # this test is about one message's budget
    budget = 0.1
    rt = runtime(tmp_path, {PACK: RULES}, f"timeout = {TIMEOUT}\nmessage_budget = {budget}")
    before = COUNTS["messages_over_budget"]
    # 100 headers, each a timeout: 100 timeouts without a budget. The rule below would reject.
    out = run(rt, transaction([BAD] * 100 + [("Subject", " stop")]))
    assert timeouts_in(out.log) <= math.ceil(budget / TIMEOUT) + 1, out.log
    assert out.verdict.action is not Action.REJECT  # matching stopped before the Subject
    stopped = [n for n in out.log if "message budget" in n]
    assert len(stopped) == 1, out.log
    assert f"most time in {tmp_path / PACK}:1 (" in stopped[0]
    assert COUNTS["messages_over_budget"] == before + 1


def test_over_budget_tempfails_when_timeouts_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PENALTIES, "strikes", 10**6)
    extra = f'timeout = {TIMEOUT}\nmessage_budget = 0.05\non_timeout = "tempfail"'
    rt = runtime(tmp_path, {PACK: RULES}, extra)
    out = run(rt, transaction([BAD] * 20))
    assert out.verdict.action is Action.TEMPFAIL
    assert any("message budget of 0.05s spent" in n for n in out.log), out.log


def test_a_rule_that_keeps_timing_out_is_put_aside_then_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    penalties = Penalties(strikes=3, window=60, hold=300, clock=lambda: now[0])
    write_packs(tmp_path, {PACK: RULES})
    rules = RuleSetHolder([tmp_path], timeout=TIMEOUT).current
    before = COUNTS["rules_disabled"]

    def message() -> Session:
        tx = transaction([BAD] * 5)
        session = Session(tx, rules, Pending(meter=Meter(budget=600)), headers=tx.message.headers,
                          penalties=penalties)
        for pos in range(len(session.headers)):
            session.check_header("header_checks", pos)
        return session

    with caplog.at_level("WARNING", logger="mailwarden.rules"):
        first = message()
    assert timeouts_in(first.notes) == 3  # the third strike puts it aside for the other two
    assert f"{tmp_path / PACK}:1: regex timed out 3 times in 60s: rule disabled for 300s" in caplog.text
    assert COUNTS["rules_disabled"] == before + 1
    now[0] += 100
    assert timeouts_in(message().notes) == 0
    now[0] += 201  # the hold is over: the rule runs again
    assert timeouts_in(message().notes) == 3
    assert "regex rule back in use" in caplog.text


def test_the_budget_counts_every_lookup_with_an_injected_clock(tmp_path: Path) -> None:
    """No timeouts at all: lookups of 0.25 s each against a budget of 1 s stop after the fifth."""
    write_packs(tmp_path, {PACK: RULES})
    rules = RuleSetHolder([tmp_path], timeout=TIMEOUT).current
    ticks = iter(i * 0.25 for i in range(100))  # start and end of each lookup: 0.25 s apart
    # Subject: a header the rules name (one they name none of is not even looked up).
    tx = transaction([("Subject", f" fine {i}") for i in range(10)])
    session = Session(tx, rules, Pending(meter=Meter(budget=1.0, clock=lambda: next(ticks))),
                      headers=tx.message.headers)
    looked = 0
    for pos in range(len(session.headers)):
        if session.stopped:
            break
        session.check_header("header_checks", pos)
        looked += 1
    assert looked == 5
    assert session.pending.meter.stopped
    culprit = "most time in header_checks on b'Subject: fine 0' (0.250s)"
    assert any(culprit in n for n in session.notes), session.notes
