"""Typed facts: found by type, folded by the pipeline alone, a later fact of a type replacing the first."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.builders import transaction

from mailwarden.core.auth import SpfResult, SpfStatus
from mailwarden.core.decisions import OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase, Pipeline


@dataclass(frozen=True)
class Seen:
    names: tuple[str, ...]


@dataclass
class Gives:
    name: str
    fact: object
    phase: Phase = Phase.MESSAGE
    saw: list[object | None] | None = None

    def applies(self, tx: Transaction) -> bool:
        return True

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        if self.saw is not None:
            self.saw.append(outcome.facts.get(SpfResult))
        return StageResult(facts=Facts(self.fact))


def test_facts_are_found_by_type() -> None:
    spf = SpfResult(SpfStatus.PASS, "example.com")
    facts = Facts(spf, Seen(("a",)))
    assert facts.get(SpfResult) is spf
    assert facts.get(Seen) == Seen(("a",))
    assert facts.get(int) is None
    assert SpfResult in facts and int not in facts
    assert list(facts) == [spf, Seen(("a",))]


def test_the_pipeline_folds_a_later_fact_over_an_earlier_one() -> None:
    ours = SpfResult(SpfStatus.FAIL, "example.com")
    upstream = SpfResult(SpfStatus.PASS, "example.com", explanation="Authentication-Results of gw")
    saw: list[object | None] = []
    outcome = Pipeline([Gives("spf", ours, Phase.ENVELOPE), Gives("spf-upstream", upstream, saw=saw),
                        Gives("reader", Seen(()), saw=saw)]).run(transaction())
    assert saw == [ours, upstream]  # each stage sees the facts of the stages before it
    assert outcome.facts.get(SpfResult) is upstream
    assert outcome.facts.get(Seen) == Seen(())


def test_results_are_enums_that_print_as_their_rfc_keyword() -> None:
    spf = SpfResult(SpfStatus.SOFTFAIL, "example.com")
    assert f"spf={spf.result}" == "spf=softfail"
    assert spf.to_json()["result"] == "softfail" and spf.to_json()["identity"] == "mailfrom"
