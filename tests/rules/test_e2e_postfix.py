"""Rule actions end to end through a real Postfix 3.7: delivered envelope, hold queue, headers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.rules.helpers import write_packs
from tests.support.milterclient import header_block
from tests.support.postfix import MailwardenProcess, PostfixInstance, unique_address

pytestmark = pytest.mark.postfix
REPO = Path(__file__).resolve().parents[2]
PRIVACY = REPO / "rules/outbound_header_checks/00-privacy.pcre"
SASL = ("user1@sender.test", "secret")

PACK = """\
/^Subject: redirect me$/    REDIRECT redirected@rcpt.test
/^Subject: copy me$/        BCC archive@rcpt.test
/^Subject: hold me$/        HOLD held for review
/^Subject: reject me$/      REJECT 5.7.1 not wanted here
/^X-Old: (.*)/              REPLACE X-New: $1
/^X-Drop:/                  IGNORE
/^X-Pre:/                   PREPEND X-Prepended: yes
"""


@pytest.fixture
def rules_milter(
    tmp_path: Path, postfix: PostfixInstance, mailwarden_factory: Callable[..., MailwardenProcess]
) -> Iterator[PostfixInstance]:
    base = write_packs(tmp_path / "rules", {"header_checks/10-e2e.pcre": PACK})
    config = f"[rules]\ndefault_packs = false\ndirs = [{str(base)!r}]\n"
    mailwarden_factory(config, socket_path=postfix.alt_milter_path)
    yield postfix


def _message(subject: str, extra: bytes = b"") -> bytes:
    return (
        b"From: <a@sender.test>\r\nTo: <b@rcpt.test>\r\nSubject: "
        + subject.encode()
        + b"\r\n"
        + extra
        + b"\r\nbody\r\n"
    )


def test_redirect_replaces_the_delivered_envelope(rules_milter: PostfixInstance) -> None:
    pf = rules_milter
    rcpt = unique_address()
    res = pf.submit(pf.alt, _message("redirect me"), "a@sender.test", [rcpt])
    assert res.ok, res
    d = pf.wait_delivery("redirected@rcpt.test")
    assert d.rcpts == ["redirected@rcpt.test"]
    assert rcpt not in d.rcpts


def test_bcc_adds_to_the_delivered_envelope(rules_milter: PostfixInstance) -> None:
    pf = rules_milter
    rcpt = unique_address()
    res = pf.submit(pf.alt, _message("copy me"), "a@sender.test", [rcpt])
    assert res.ok, res
    archived = pf.wait_delivery("archive@rcpt.test")
    original = pf.wait_delivery(rcpt)
    assert "archive@rcpt.test" in archived.rcpts and rcpt in original.rcpts


def test_hold_puts_the_message_in_the_hold_queue(rules_milter: PostfixInstance) -> None:
    pf = rules_milter
    rcpt = unique_address()
    res = pf.submit(pf.alt, _message("hold me"), "a@sender.test", [rcpt])
    assert res.ok, res
    try:
        assert res.queue_id in pf.hold_queue()
        held = [q for q in pf.queue() if q.get("queue_id") == res.queue_id]
        assert [r["address"] for r in held[0]["recipients"]] == [rcpt]
    finally:
        pf.flush_queues()


def test_reject_reaches_the_smtp_client(rules_milter: PostfixInstance) -> None:
    pf = rules_milter
    rcpt = unique_address()
    res = pf.submit(pf.alt, _message("reject me"), "a@sender.test", [rcpt])
    assert (res.code, res.stage) == (550, "data")
    assert "5.7.1 not wanted here" in res.text
    pf.assert_no_delivery(rcpt)


def test_header_edits_in_the_delivered_message(rules_milter: PostfixInstance) -> None:
    pf = rules_milter
    rcpt = unique_address()
    extra = b"X-Pre: p\r\nX-Drop: d\r\nX-Old: value\r\n"
    res = pf.submit(pf.alt, _message("edits", extra), "a@sender.test", [rcpt])
    assert res.ok, res
    d = pf.wait_delivery(rcpt)
    names = [(n, v) for n, v in header_block(d.without_mta_received())]
    got = [(n, v) for n, v in names if n.lower().startswith("x-")]
    assert got == [("X-Prepended", b" yes"), ("X-Pre", b" p"), ("X-New", b" value")]


def test_contrib_snippet_removes_the_submission_hops_received(
    postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess
) -> None:
    """contrib/postfix/submission-header-checks.cf: the privacy pack as smtp_header_checks."""
    snippet = (REPO / "contrib/postfix/submission-header-checks.cf").read_text()
    [line] = [ln for ln in snippet.splitlines() if ln.startswith("smtp_header_checks")]
    assert line.endswith("/rules/outbound_header_checks/00-privacy.pcre")
    rcpt = unique_address()
    raw = (
        b"Received: from laptop (unknown [10.9.8.7]) by client\r\nFrom: <user1@sender.test>\r\n"
        b"To: <" + rcpt.encode() + b">\r\nSubject: private\r\nUser-Agent: Mutt\r\n\r\nbody\r\n"
    )
    with postfix.settings(smtp_header_checks=f"pcre:{PRIVACY}"):
        res = postfix.submit(postfix.submission, raw, "user1@sender.test", [rcpt], auth=SASL)
        assert res.ok, res
        d = postfix.wait_delivery(rcpt)
    names = [n.lower() for n, _ in header_block(d.data)]
    assert "received" not in names and "user-agent" not in names
    assert "subject" in names
