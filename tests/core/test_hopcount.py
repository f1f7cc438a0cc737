"""Hopcount counts Received headers as Postfix's hopcount_limit does (its own hidden one included)."""

from __future__ import annotations

import pytest
from tests.support.builders import transaction

from mailwarden.core.decisions import Action, Outcome
from mailwarden.core.model import Header, Transaction
from mailwarden.core.pipeline import Phase, Pipeline
from mailwarden.core.stages.hopcount import Hopcount


def tx_with(headers: list[Header]) -> Transaction:
    return transaction(headers, body=b"", mail_from="<a@b.test>", mta_header=None)


def received(n: int, name: str = "Received") -> list[Header]:
    return [Header(name, f" from hop{i}.test by relay{i}.test") for i in range(n)]


@pytest.mark.parametrize(("visible", "rejected"), [(47, False), (48, False), (49, True), (50, True)])
def test_limit_counts_the_mta_header(visible: int, rejected: bool) -> None:
    outcome = Pipeline([Hopcount(50)]).run_phase(tx_with(received(visible)), Phase.HEADERS, Outcome())
    assert (outcome.verdict.action is Action.REJECT) is rejected
    if rejected:
        assert outcome.verdict.reply is not None
        assert str(outcome.verdict.reply) == "554 5.4.0 Error: too many hops"
        assert outcome.decided_by == "hopcount"


def test_header_name_in_any_case_counts() -> None:
    headers = received(20, "received") + received(20, "RECEIVED") + received(9, "ReCeIvEd")
    outcome = Pipeline([Hopcount(50)]).run_phase(tx_with(headers), Phase.HEADERS, Outcome())
    assert outcome.verdict.action is Action.REJECT


def test_folded_and_non_utf8_headers_count_once_each() -> None:
    headers = [Header("Received", " from a\n\tby b\n\tfor <x@y.test>; date")] * 24
    headers += [Header("Received", " from caf\udce9 by b")] * 24
    headers += [Header("X-Received", " not a hop")] * 10
    tx = tx_with(headers)
    outcome = Pipeline([Hopcount(50)]).run_phase(tx, Phase.HEADERS, Outcome())
    assert outcome.verdict.action is Action.CONTINUE  # 48 visible + 1
    tx.received_headers = (*tx.received_headers, Header("Received", " one more"))
    outcome = Pipeline([Hopcount(50)]).run_phase(tx, Phase.HEADERS, Outcome())
    assert outcome.verdict.action is Action.REJECT


def test_configurable_limit_and_disabled() -> None:
    assert Pipeline([Hopcount(5)]).run(tx_with(received(4))).verdict.action is Action.REJECT
    assert Pipeline([Hopcount(5)]).run(tx_with(received(3))).verdict.action is Action.CONTINUE
    assert Pipeline([Hopcount(0)]).run(tx_with(received(200))).verdict.action is Action.CONTINUE


def test_counts_headers_as_received_not_as_edited() -> None:
    tx = tx_with(received(49))
    tx.message.headers.clear()  # an earlier edit cannot hide a loop
    assert Pipeline([Hopcount(50)]).run(tx).verdict.action is Action.REJECT
