"""Outbound stripping: every configured header, highest occurrence first, inbound untouched."""

from __future__ import annotations

from mailwarden.core.decisions import DeleteHeader
from mailwarden.core.model import Body, Connection, Direction, Envelope, Header, Message, Transaction
from mailwarden.core.pipeline import Pipeline
from mailwarden.core.stages.strip import Strip

HEADERS = [
    Header("Received", " from laptop (unknown [198.51.100.7])\n\tby submit.test"),
    Header("From", " alice@sender.test"),
    Header("received", " from phone by submit.test"),
    Header("User-Agent", " Mutt/2.2"),
    Header("Subject", " caf\udce9 latin-1"),
    Header("X-MAILER", " Outlook"),
    Header("X-Originating-IP", " [198.51.100.7]"),
    Header("RECEIVED", " third"),
]


def tx(direction: Direction) -> Transaction:
    return Transaction(Connection(), Envelope(), Message(list(HEADERS), Body()), direction)


def test_outbound_deletes_highest_occurrence_first() -> None:
    t = tx(Direction.OUTBOUND)
    outcome = Pipeline([Strip()]).run(t)
    received = [e for e in outcome.edits if isinstance(e, DeleteHeader) and e.name.lower() == "received"]
    assert [e.occurrence for e in received] == [3, 2, 1]
    assert [h.name for h in t.message.headers] == ["From", "Subject"]
    assert t.message.headers[1].value == " caf\udce9 latin-1"  # untouched bytes survive


def test_inbound_is_untouched() -> None:
    t = tx(Direction.INBOUND)
    outcome = Pipeline([Strip()]).run(t)
    assert outcome.edits == []
    assert t.message.headers == HEADERS


def test_configured_list() -> None:
    t = tx(Direction.OUTBOUND)
    outcome = Pipeline([Strip(("user-agent",))]).run(t)
    assert outcome.edits == [DeleteHeader("User-Agent", 1)]
