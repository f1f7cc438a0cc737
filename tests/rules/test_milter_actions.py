"""Every header_checks action through `mailwarden serve` over the real milter protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.rules.helpers import write_packs
from tests.support.milterclient import MilterClient, Reply
from tests.support.postfix import MailwardenProcess

ACTIONS = """\
/^Subject: reject$/         REJECT
/^Subject: reject-text$/    REJECT 5.7.0 go away
/^Subject: tempfail$/       REJECT 4.7.1 come back later
/^Subject: discard$/        DISCARD
/^Subject: hold$/           HOLD held for review
/^X-Drop:/                  IGNORE
/^X-Strip:/                 STRIP
/^X-Old: (.*)/              REPLACE X-New: $1
/^X-Same: (.*)/             REPLACE X-Same: was $1
/^X-Pre:/                   PREPEND X-Prepended: yes
/^Subject: warn$/           WARN looked
/^Subject: info$/           INFO noted
/^Subject: dunno$/          DUNNO
/^Subject: pass$/           PASS
/^Subject: redirect$/       REDIRECT other@rcpt.test
/^Subject: bcc$/            BCC copy@rcpt.test
/^Subject: filter$/         FILTER smtp:[127.0.0.1]:10025
"""
CONFIG = """\
[rules]
default_packs = false
dirs = [{dirs!r}]
[hopcount]
limit = 0
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwardenProcess]:
    base = write_packs(
        tmp_path_factory.mktemp("rules"),
        {
            "header_checks/10-actions.pcre": ACTIONS,
            "body_checks/10-body.pcre": "/^reject this body$/ REJECT body says no\n",
        },
    )
    proc = MailwardenProcess(config=CONFIG.format(dirs=str(base)))
    proc.start()
    yield proc
    proc.close()


@pytest.fixture
def send(served: MailwardenProcess) -> Iterator[Callable[..., Reply]]:
    clients: list[MilterClient] = []

    def go(subject: str, extra: bytes = b"", body: bytes = b"hello\r\n", **kw: object) -> Reply:
        client = MilterClient.connect(served.spec)
        clients.append(client)
        raw = b"From: a@sender.test\r\nSubject: " + subject.encode() + b"\r\n" + extra + b"\r\n" + body
        return client.send_message(raw, **kw)  # type: ignore[arg-type]

    yield go
    for c in clients:
        c.close()


def _ops(reply: Reply, *ops: str) -> list[tuple[str, str, bytes | str, int]]:
    return [
        (m.op, m.name, m.value if m.op != "delrcpt" and m.op != "addrcpt" else m.address, m.index)
        for m in reply.mods
        if m.op in ops
    ]


def test_reject(send: Callable[..., Reply]) -> None:
    r = send("reject")
    assert (r.verdict, r.reply) == ("reject", "550 5.7.1 message content rejected")
    assert r.stage == "eoh"  # decided at end of headers: the body is never sent
    r = send("reject-text")
    assert r.reply == "550 5.7.0 go away"


def test_reject_4xx_tempfails(send: Callable[..., Reply]) -> None:
    r = send("tempfail")
    assert (r.verdict, r.reply) == ("tempfail", "451 4.7.1 come back later")


def test_discard(send: Callable[..., Reply]) -> None:
    assert send("discard").action == "discard"


def test_hold_quarantines(send: Callable[..., Reply]) -> None:
    r = send("hold")
    assert [m.reason for m in r.mods if m.op == "quarantine"] == ["held for review"]


def test_ignore_and_strip_delete(send: Callable[..., Reply]) -> None:
    r = send("x", b"X-Drop: 1\r\nX-Keep: 1\r\nX-Drop: 2\r\nX-Strip: s\r\n")
    # Bottom-up: the last header first, so each index is the one as received.
    assert _ops(r, "chgheader") == [
        ("chgheader", "X-Strip", b"", 1),
        ("chgheader", "X-Drop", b"", 2),
        ("chgheader", "X-Drop", b"", 1),
    ]


def test_replace(send: Callable[..., Reply]) -> None:
    r = send("x", b"X-Same: a\r\nX-Old: b\r\n")
    mods = [(m.op, m.name, m.value, m.index) for m in r.header_mods()]
    # Subject is visible header 2 (1-based), X-Same 3, X-Old 4: insheader index 3 is X-Old's place.
    assert ("chgheader", "X-Same", b" was a", 1) in mods
    assert ("chgheader", "X-Old", b"", 1) in mods
    assert ("insheader", "X-New", b" b", 4) in mods


def test_prepend(send: Callable[..., Reply]) -> None:
    r = send("x", b"X-Pre: 1\r\n")
    assert ("insheader", "X-Prepended", b" yes", 3) in [
        (m.op, m.name, m.value, m.index) for m in r.header_mods()
    ]


@pytest.mark.parametrize("subject", ["warn", "info", "dunno", "filter"])
def test_logging_actions_change_nothing(send: Callable[..., Reply], subject: str) -> None:
    r = send(subject)
    assert r.action == "continue" or r.action == "accept"
    assert not [m for m in r.mods if m.op in ("chgheader", "addrcpt", "delrcpt", "quarantine")]


def test_pass_accepts_and_skips_body_checks(send: Callable[..., Reply]) -> None:
    r = send("pass", body=b"reject this body\r\n")
    assert r.action == "accept"


def test_body_checks_reject(send: Callable[..., Reply]) -> None:
    r = send("x", body=b"first\r\nreject this body\r\n")
    assert (r.verdict, r.reply) == ("reject", "550 5.7.1 body says no")


def test_redirect(send: Callable[..., Reply]) -> None:
    r = send("redirect", rcpts=("<b1@rcpt.test>", "<b2@rcpt.test>"))
    assert _ops(r, "addrcpt", "delrcpt") == [
        ("delrcpt", "", "<b1@rcpt.test>", 0),
        ("delrcpt", "", "<b2@rcpt.test>", 0),
        ("addrcpt", "", "<other@rcpt.test>", 0),
    ]


def test_bcc(send: Callable[..., Reply]) -> None:
    r = send("bcc")
    assert _ops(r, "addrcpt", "delrcpt") == [("addrcpt", "", "<copy@rcpt.test>", 0)]


def test_served_logs_in_postfix_form(served: MailwardenProcess, send: Callable[..., Reply]) -> None:
    send("warn")
    log = served.log()
    assert "warning: header Subject: warn from " in log and "proto=ESMTP helo=<client.test>: looked" in log


def test_start_refused_on_a_bad_rule(
    tmp_path: Path, mailwarden_factory: Callable[..., MailwardenProcess]
) -> None:
    base = write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ REJECT\n/^X-(/ REJECT\n"})
    with pytest.raises(RuntimeError) as exc:
        mailwarden_factory(CONFIG.format(dirs=str(base)))
    assert "10.pcre:2:" in str(exc.value)
