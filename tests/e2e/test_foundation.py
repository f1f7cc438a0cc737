"""End to end through a real private Postfix 3.7: client -> smtpd -> cleanup -> mailwarden -> sink.

One Postfix instance for the whole session (tests/conftest.py); each test uses its own
recipients, so the tests stay independent. The shared mailwarden runs the embedded defaults;
tests that need another milter use the instance's "alt" listener and socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.milterclient import MilterClient, apply_mods, header_block
from tests.support.postfix import MailwardenProcess, PostfixInstance, unique_address

pytestmark = pytest.mark.postfix

SASL = ("user1@sender.test", "secret")
FAILING_SERVE = Path(__file__).resolve().parent.parent / "support" / "failing_serve.py"
STRIPPED = {"received", "user-agent", "x-mailer", "x-originating-ip"}
# Headers later features add to inbound mail (Authentication-Results); the foundation adds none.
ADDED = {"authentication-results"}


def message(rcpt: str, received: int = 2, subject: str = "e2e test", extra: bytes = b"",
            body: bytes = b"Hello,\r\nline two with 8bit caf\xc3\xa9\r\n.leading dot\r\n") -> bytes:
    hops = b"".join(
        b"Received: from hop%d.example (hop%d.example [127.0.0.%d])\r\n\tby relay%d.example with ESMTP;"
        b" Sat, 21 Nov 2026 10:00:%02d +0000\r\n" % (i, i, i % 250 + 1, i, i % 60)
        for i in range(received))
    return (hops + b"From: Alice <a@sender.test>\r\nTo: <" + rcpt.encode() + b">\r\n"
            b"Subject: " + subject.encode() + b"\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <" + rcpt.encode() + b">\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            b"User-Agent: Mutt/2.2.9\r\nX-Mailer:  two leading spaces\r\n"
            b"X-Folded: first line\r\n  second line with two spaces\r\n\tthird line with tab\r\n"
            b"X-Latin1: caf\xe9 non-UTF-8\r\nX-Keep:value-no-space\r\n" + extra + b"\r\n" + body)


def without(raw: bytes, names: set[str]) -> bytes:
    """The message with every header named in `names` removed (CRLF line ends)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    out: list[bytes] = []
    drop = False
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            drop = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower() in names
        if not drop:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def test_inbound_is_delivered_unchanged(
        postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess) -> None:
    rcpt = unique_address()
    raw = message(rcpt)
    res = postfix.submit(postfix.inbound, raw, "a@sender.test", [rcpt])
    assert res.ok, res
    got = postfix.wait_delivery(rcpt)
    assert (got.mail_from, got.rcpts) == ("a@sender.test", [rcpt])
    assert b"by mx.ci.test (Postfix) with ESMTP id " + res.queue_id.encode() in got.mta_received()
    assert without(got.without_mta_received(), ADDED) == raw


@pytest.mark.parametrize("listener", ["submission", "originating"])
def test_outbound_loses_received_user_agent_x_mailer(
        postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess, listener: str) -> None:
    rcpt = unique_address("out", "remote.test")
    raw = message(rcpt, received=3, extra=b"X-Originating-IP: [127.0.0.9]\r\n")
    auth = SASL if listener == "submission" else None
    res = postfix.submit(postfix.ports[listener], raw, "a@sender.test", [rcpt], auth=auth)
    assert res.ok, res
    got = postfix.wait_delivery(rcpt)
    own = got.mta_received()
    assert own, got.data[:400]
    assert (b"with ESMTPA id " if auth else b"with ESMTP id ") in own
    names = [n.lower() for n, _ in header_block(got.data)]
    # Only Postfix's own Received is left: no milter can remove that one (see the README).
    assert names.count("received") == 1 and names[0] == "received"
    assert not {"user-agent", "x-mailer", "x-originating-ip"} & set(names)
    assert got.without_mta_received() == without(raw, STRIPPED)


@pytest.mark.parametrize("hops", [49, 60])
def test_too_many_hops_gives_554_from_mailwarden(
        postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess, hops: int) -> None:
    rcpt = unique_address("hops")
    res = postfix.submit(postfix.inbound, message(rcpt, received=hops), "a@sender.test", [rcpt])
    assert (res.code, res.stage) == (554, "data"), res
    assert res.text == "5.4.0 Error: too many hops", res
    # mailwarden said it, not Postfix's own hopcount_limit (set to 100 in this instance).
    line = postfix.wait_log(re.compile(rf"milter-reject: .*too many hops.*to=<{re.escape(rcpt)}>"))
    assert "hopcount exceeded" not in line
    postfix.assert_no_delivery(rcpt, wait=0.3)


def test_48_hops_are_delivered(postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess) -> None:
    rcpt = unique_address("hops")
    raw = message(rcpt, received=48)
    res = postfix.submit(postfix.inbound, raw, "a@sender.test", [rcpt])
    assert res.ok, res
    assert without(postfix.wait_delivery(rcpt).without_mta_received(), ADDED) == raw


def test_client_apply_mods_matches_postfix(
        postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess) -> None:
    """The test client's view of the edits equals what Postfix really delivers (same milter)."""
    for port, auth, kw in ((postfix.originating, None, {"daemon_name": "ORIGINATING"}),
                           (postfix.inbound, None, {})):
        rcpt = unique_address("mods")
        raw = message(rcpt, received=3)
        res = postfix.submit(port, raw, "a@sender.test", [rcpt], auth=auth)
        assert res.ok, res
        got = postfix.wait_delivery(rcpt)
        with MilterClient.connect(postfix_mailwarden.spec) as mc:
            reply = mc.send_message(raw, "<a@sender.test>", [f"<{rcpt}>"], **kw)  # type: ignore[arg-type]
            expected = apply_mods(raw, reply.mods, leadspc=mc.leadspc, mta_received=got.mta_received())
        assert got.data == expected


@pytest.fixture(scope="module")
def failing_milter(postfix_instance: PostfixInstance) -> Iterator[MailwardenProcess]:
    """mailwarden with one extra stage that raises on Subject 'explode', on the alt listener."""
    # Missing, it must fail rather than skip: the failure tests below would prove nothing.
    assert FAILING_SERVE.exists(), f"{FAILING_SERVE} (a stage that raises) is missing"
    proc = MailwardenProcess(socket_path=postfix_instance.alt_milter_path, script=FAILING_SERVE)
    yield proc
    proc.close()


def _running(proc: MailwardenProcess) -> MailwardenProcess:
    return proc if proc.running else proc.start()


def test_failing_stage_gives_451_and_nothing_is_delivered(
        postfix: PostfixInstance, failing_milter: MailwardenProcess) -> None:
    _running(failing_milter)
    rcpt = unique_address("boom")
    res = postfix.submit(postfix.alt, message(rcpt, subject="please explode"), "a@sender.test", [rcpt])
    assert (res.code, res.stage) == (451, "data"), res
    assert res.text.startswith("4.3.0 "), res
    postfix.assert_no_delivery(rcpt, wait=0.3)
    assert "Traceback" in failing_milter.log()
    # The same milter passes a message that does not trigger the failure.
    ok = unique_address("fine")
    assert postfix.submit(postfix.alt, message(ok), "a@sender.test", [ok]).ok
    postfix.wait_delivery(ok)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_mailwarden_stopped_postfix_tempfails(
        postfix: PostfixInstance, failing_milter: MailwardenProcess, how: str) -> None:
    proc = _running(failing_milter)
    before = unique_address("before")
    assert postfix.submit(postfix.alt, message(before), "a@sender.test", [before]).ok
    postfix.wait_delivery(before)
    if how == "sigterm":
        assert proc.stop() == 0, proc.log()[-2000:]
        assert not proc.socket_path.exists(), "socket file left behind after SIGTERM"
    else:
        assert proc.proc is not None
        proc.proc.kill()
        proc.proc.wait(5)                 # the socket file stays: Postfix gets "connection refused"
    rcpt = unique_address("down")
    res = postfix.submit(postfix.alt, message(rcpt), "a@sender.test", [rcpt])
    assert res.code == 451 and res.stage in ("mail", "data"), res
    assert res.text.startswith("4.7.1 "), res
    postfix.assert_no_delivery(rcpt, wait=0.3)


def test_submission_port_requires_sasl(
        postfix: PostfixInstance, postfix_mailwarden: MailwardenProcess) -> None:
    """The outbound tests above rely on this: no SASL, no relaying through the submission port."""
    rcpt = unique_address("nosasl", "remote.test")
    res = postfix.submit(postfix.submission, message(rcpt), "a@sender.test", [rcpt])
    assert (res.code, res.stage) == (554, "rcpt"), res
    res = postfix.submit(postfix.submission, message(rcpt), "a@sender.test", [rcpt],
                         auth=("user1@sender.test", "wrong"))
    assert (res.code, res.stage) == (535, "auth"), res
    postfix.assert_no_delivery(rcpt, wait=0.1)
