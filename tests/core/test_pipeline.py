"""The pipeline: phases, first terminal verdict wins, a raising stage becomes a tempfail."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.builders import transaction

from mailwarden.core.decisions import Action, AddHeader, Outcome, StageResult, Verdict
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase, Pipeline


@dataclass
class Probe:
    name: str
    phase: Phase = Phase.MESSAGE
    verdict: Verdict | None = None
    edit: AddHeader | None = None
    boom: bool = False
    seen: list[list[str]] = field(default_factory=list)

    def applies(self, tx: Transaction) -> bool:
        return True

    def run(self, tx: Transaction, outcome: Outcome) -> StageResult:
        self.seen.append([h.name for h in tx.message.headers])
        if self.boom:
            raise RuntimeError("stage exploded")
        return StageResult(verdict=self.verdict, edits=(self.edit,) if self.edit else ())


def tx() -> Transaction:
    return transaction("From: a@b.test", body=b"", mta_header=None)


def test_later_stages_see_earlier_edits() -> None:
    first = Probe("first", edit=AddHeader("X-First", " 1"))
    second = Probe("second")
    Pipeline([first, second]).run(tx())
    assert second.seen == [["From", "X-First"]]


def test_first_terminal_verdict_wins_and_stops() -> None:
    reject = Probe("reject", verdict=Verdict.reject("550", "5.7.1", "no"))
    later = Probe("later", verdict=Verdict(Action.DISCARD))
    outcome = Pipeline([reject, later]).run(tx())
    assert outcome.verdict.action is Action.REJECT and outcome.decided_by == "reject"
    assert later.seen == []


def test_phases_run_in_order() -> None:
    order: list[str] = []

    @dataclass
    class Rec(Probe):
        def run(self, t: Transaction, outcome: Outcome) -> StageResult:
            order.append(self.name)
            return StageResult()

    stages = [Rec("m", Phase.MESSAGE), Rec("h", Phase.HEADERS), Rec("e", Phase.ENVELOPE)]
    Pipeline(stages).run(tx())
    assert order == ["e", "h", "m"]


def test_a_raising_stage_becomes_a_tempfail_with_traceback_note() -> None:
    outcome = Pipeline([Probe("bad", boom=True), Probe("after")]).run(tx())
    assert outcome.verdict.action is Action.TEMPFAIL
    assert outcome.verdict.reply is not None and outcome.verdict.reply.code == "451"
    assert outcome.verdict.reply.dsn == "4.3.0"
    assert "stage exploded" in outcome.errors[0]


def test_quarantine_lets_later_stages_edit_and_a_later_reject_wins() -> None:
    hold = Probe("hold", verdict=Verdict.quarantine("held"))
    sign = Probe("sign", edit=AddHeader("DKIM-Signature", " v=1", 0))
    outcome = Pipeline([hold, sign]).run(tx())
    assert outcome.verdict.action is Action.QUARANTINE and outcome.decided_by == "hold"
    assert [e.name for e in outcome.edits if isinstance(e, AddHeader)] == ["DKIM-Signature"]
    reject = Probe("reject", verdict=Verdict.reject("550", "5.7.1", "no"))
    outcome = Pipeline([hold, reject]).run(tx())
    assert outcome.verdict.action is Action.REJECT


def test_accept_after_quarantine_keeps_the_hold_and_stops() -> None:
    later = Probe("later", edit=AddHeader("X-Later", " 1"))
    hold = Probe("hold", verdict=Verdict.quarantine("held"))
    stages = [hold, Probe("pass", verdict=Verdict(Action.ACCEPT)), later]
    outcome = Pipeline(stages).run(tx())
    assert outcome.verdict.action is Action.QUARANTINE and later.seen == []


def test_an_edit_the_mta_cannot_take_is_a_tempfail_in_the_core() -> None:
    # A header value with non-UTF-8 bytes (carried as surrogate escapes) cannot go through
    # libmilter: the core turns it into a tempfail, so dry-run reports what the milter does.
    latin1 = b" caf\xe9".decode("utf-8", "surrogateescape")
    outcome = Pipeline([Probe("copy", edit=AddHeader("X-Copy", latin1))]).run(tx())
    assert outcome.verdict.action is Action.TEMPFAIL
    assert outcome.verdict.reply is not None and "non-UTF-8" in outcome.verdict.reply.text
    assert outcome.errors and outcome.finished


def test_a_reject_with_an_unwritable_edit_stays_a_reject() -> None:
    latin1 = b" caf\xe9".decode("utf-8", "surrogateescape")
    stages = [Probe("copy", edit=AddHeader("X-Copy", latin1)),
              Probe("reject", verdict=Verdict.reject("550", "5.7.1", "no"))]
    assert Pipeline(stages).run(tx()).verdict.action is Action.REJECT


def test_writable_edits_pass() -> None:
    outcome = Pipeline([Probe("ok", edit=AddHeader("X-Ok", " café"))]).run(tx())
    assert outcome.verdict.action is Action.CONTINUE and not outcome.errors
