"""`mailwarden serve` over a real unix socket, driven by a milter-protocol client playing Postfix.

The client offers what Postfix 3.7 offers, sends what Postfix sends (no MTA Received header: Postfix
hides its own), and `apply_mods` applies the replies the way Postfix does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.milterclient import (
    P_HDR_LEADSPC,
    P_NOBODY,
    P_NOEOH,
    P_NOHDRS,
    P_NR_BODY,
    P_NR_EOH,
    P_NR_HDR,
    P_NR_MAIL,
    P_NR_RCPT,
    MilterClient,
    Reply,
    apply_mods,
    header_block,
)
from tests.support.postfix import MailwardenProcess

STRIPPED = {"received", "user-agent", "x-mailer", "x-originating-ip"}
# Headers later features add to inbound mail; the foundation itself adds nothing.
ADDED_INBOUND = {"authentication-results"}


def message(received: int = 0, extra: bytes = b"", body: bytes = b"Hello.\r\n") -> bytes:
    hops = b"".join(
        b"Received: from hop%d.example (hop%d.example [127.0.0.%d])\r\n\tby relay%d.example with ESMTP;"
        b" Sat, 21 Nov 2026 10:00:%02d +0000\r\n" % (i, i, i % 250 + 1, i, i % 60)
        for i in range(received))
    return (hops + b"From: Alice <a@sender.test>\r\nTo: Bob <b@rcpt.test>\r\nSubject: test\r\n"
            b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t1@sender.test>\r\n"
            + extra + b"\r\n" + body)


OUTBOUND_EXTRA = (
    b"User-Agent: Mutt/2.2.9\r\n"
    b"X-Mailer:  two leading spaces\r\n"
    b"X-Folded: first line\r\n  second line with two spaces\r\n\tthird line with tab\r\n"
    b"received: from lowercase.example by relay.example; Sat, 21 Nov 2026 10:00:00 +0000\r\n"
    b"X-Keep:value-no-space\r\n"
    b"X-Originating-IP: [127.0.0.9]\r\n"
)


def without(raw: bytes, names: set[str]) -> bytes:
    """The message with every header named in `names` removed, computed line by line (CRLF)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    out: list[bytes] = []
    drop = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not drop:
                out.append(line)
            continue
        drop = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower() in names
        if not drop:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def delivered(res: Reply, raw: bytes, client: MilterClient) -> bytes:
    assert res.stage == "eom", res
    assert res.verdict in ("accept", "continue"), res
    return apply_mods(raw, res.mods, leadspc=client.leadspc)


def assert_inbound_untouched(res: Reply, raw: bytes, client: MilterClient) -> None:
    out = delivered(res, raw, client)
    assert not [m for m in res.mods if m.op not in ("addheader", "insheader")], res.mods
    assert {m.name.lower() for m in res.mods} <= ADDED_INBOUND, res.mods
    assert without(out, ADDED_INBOUND) == raw


def assert_deletes_highest_first(res: Reply) -> None:
    seen: dict[str, list[int]] = {}
    for m in res.mods:
        if m.is_delete:
            seen.setdefault(m.name.lower(), []).append(m.index)
    for name, idx in seen.items():
        assert idx == sorted(idx, reverse=True) and len(set(idx)) == len(idx), (name, idx)


@pytest.fixture(scope="module")
def served() -> Iterator[MailwardenProcess]:
    proc = MailwardenProcess().start()
    yield proc
    proc.close()


@pytest.fixture
def client(served: MailwardenProcess) -> Iterator[MilterClient]:
    mc = MilterClient.connect(served.spec)
    mc.optneg()
    yield mc
    mc.close()


def test_negotiates_leading_space_and_accepts_postfix_offer(client: MilterClient) -> None:
    assert client.protocol & P_HDR_LEADSPC
    assert client.leadspc
    assert client.version == 6
    # The edits mailwarden makes need ADDHDRS (0x1) and CHGHDRS (0x10).
    assert client.actions & 0x11 == 0x11


@pytest.mark.parametrize("hops", [47, 48])
def test_below_hopcount_limit_is_accepted_unchanged(client: MilterClient, hops: int) -> None:
    raw = message(hops)
    res = client.send_message(raw)
    assert_inbound_untouched(res, raw, client)


@pytest.mark.parametrize("hops", [49, 50, 120])
def test_too_many_hops_rejected_at_end_of_headers(client: MilterClient, hops: int) -> None:
    res = client.send_message(message(hops))
    # Decided at end of headers: the client never got to send the body.
    assert res.stage == "eoh", res
    assert res.verdict == "reject"
    assert (res.code, res.dsn, res.text) == ("554", "5.4.0", "Error: too many hops")


def test_hopcount_counts_received_in_any_case(client: MilterClient) -> None:
    raw = message(48, extra=b"RECEIVED: from upper.example by relay.example\r\n")
    res = client.send_message(raw)
    assert res.stage == "eoh" and res.code == "554", res


def test_mail_from_waits_for_a_reply_only_when_a_stage_runs_there(
        client: MilterClient, mailwarden_factory) -> None:  # type: ignore[no-untyped-def]
    # Default config: SPF runs at MAIL FROM and may reject there, so MAIL needs its reply.
    assert not client.protocol & P_NR_MAIL
    assert client.protocol & (P_NR_HDR | P_NR_BODY | P_NR_RCPT) == P_NR_HDR | P_NR_BODY | P_NR_RCPT
    assert not client.protocol & (P_NR_EOH | P_NOHDRS | P_NOBODY | P_NOEOH)
    # Without SPF nothing runs at MAIL FROM: no reply, one round trip less per message, and
    # a reject still comes at end of headers.
    proc = mailwarden_factory("[spf]\nenabled = false\n")
    with MilterClient.connect(proc.spec) as mc:
        mc.optneg()
        assert mc.protocol & P_NR_MAIL
        assert mc.send_message(message(3)).stage == "eom"
        res = mc.send_message(message(50))
        assert (res.stage, res.code) == ("eoh", "554"), res


def test_an_mta_without_reply_less_steps_gets_a_reply_to_each(served: MailwardenProcess) -> None:
    nr_bits = 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | P_NR_HDR
    with MilterClient.connect(served.spec, timeout=10) as mc:
        mc.optneg(protocol=0x1FFFFF & ~nr_bits)
        assert not mc.protocol & nr_bits
        # The client waits for a reply at every step: a NOREPLY here would hang it.
        res = mc.send_message(message(2))
        assert (res.stage, res.verdict) == ("eom", "accept"), res
        assert mc.send_message(message(50)).stage == "eoh"


def test_hopcount_limit_from_config(mailwarden_factory) -> None:  # type: ignore[no-untyped-def]
    proc = mailwarden_factory("[hopcount]\nlimit = 10\n")
    with MilterClient.connect(proc.spec) as mc:
        assert mc.send_message(message(8)).stage == "eom"
        res = mc.send_message(message(9))
        assert (res.stage, res.code, res.dsn) == ("eoh", "554", "5.4.0"), res


@pytest.mark.parametrize("how", ["auth", "daemon_name"])
def test_outbound_loses_received_user_agent_x_mailer(client: MilterClient, how: str) -> None:
    raw = message(3, extra=OUTBOUND_EXTRA)
    kw = {"auth": "user1@sender.test"} if how == "auth" else {"daemon_name": "ORIGINATING"}
    res = client.send_message(raw, **kw)  # type: ignore[arg-type]
    out = delivered(res, raw, client)
    deletes = [m for m in res.mods if m.is_delete]
    assert deletes and all(m.op == "chgheader" for m in deletes)
    assert sorted((m.name.lower(), m.index) for m in deletes) == sorted(
        [("received", 1), ("received", 2), ("received", 3), ("received", 4),
         ("user-agent", 1), ("x-mailer", 1), ("x-originating-ip", 1)])
    assert_deletes_highest_first(res)
    assert not {n.lower() for n, _ in header_block(out)} & STRIPPED
    # Everything else byte for byte: folds, "X-Keep:value-no-space", the body.
    assert without(out, ADDED_INBOUND) == without(raw, STRIPPED)


def test_outbound_without_strippable_headers_gets_no_deletes(client: MilterClient) -> None:
    raw = message(0)
    res = client.send_message(raw, auth="user1@sender.test")
    out = delivered(res, raw, client)
    assert not [m for m in res.mods if m.is_delete], res.mods
    assert out.endswith(raw.split(b"\r\n", 1)[1])


def test_messages_on_one_connection_are_independent(client: MilterClient, served: MailwardenProcess) -> None:
    """One Milter object serves every message of a connection: state must reset at MAIL."""
    # Outbound connection (ORIGINATING listener).
    first = client.send_message(message(3, OUTBOUND_EXTRA), daemon_name="ORIGINATING")
    assert [m.index for m in first.mods if m.is_delete and m.name.lower() == "received"] == [4, 3, 2, 1]
    second = client.send_message(message(1))
    assert [(m.name, m.index) for m in second.mods if m.is_delete] == [("Received", 1)]
    third = client.send_message(message(49))
    assert (third.stage, third.code) == ("eoh", "554")
    # After an end-of-headers reject the client aborts, then a new MAIL starts afresh.
    fourth = client.send_message(message(2))
    assert [m.index for m in fourth.mods if m.is_delete] == [2, 1]
    # Inbound connection: a reject does not leak into the next message.
    with MilterClient.connect(served.spec) as mc:
        mc.optneg()
        assert mc.send_message(message(49)).code == "554"
        raw = message(48)
        assert_inbound_untouched(mc.send_message(raw), raw, mc)
        raw = message(1)
        assert_inbound_untouched(mc.send_message(raw), raw, mc)


def test_auth_on_one_message_does_not_make_the_next_outbound(served: MailwardenProcess) -> None:
    with MilterClient.connect(served.spec) as mc:
        mc.optneg()
        res = mc.send_message(message(2), auth="user1@sender.test")
        assert [m.index for m in res.mods if m.is_delete] == [2, 1]
        raw = message(2)
        assert_inbound_untouched(mc.send_message(raw), raw, mc)


NON_UTF8 = (
    b"X-Latin1: caf\xe9 cr\xe8me\r\n"
    b"Subject2: =?utf-8?q?ok?= \xff\xfe raw\r\n"
    b"X-Folded-Latin1: first \xe9\r\n\tsecond \xe0\r\n"
)


def test_non_utf8_header_values_pass_untouched_inbound(client: MilterClient) -> None:
    raw = message(2, extra=NON_UTF8)
    assert_inbound_untouched(client.send_message(raw), raw, client)


def test_non_utf8_header_values_pass_untouched_outbound(client: MilterClient) -> None:
    raw = message(2, extra=NON_UTF8 + b"User-Agent: caf\xe9-mailer\r\n")
    res = client.send_message(raw, auth="user1@sender.test")
    out = delivered(res, raw, client)
    assert without(out, ADDED_INBOUND) == without(raw, STRIPPED)
    assert b"X-Latin1: caf\xe9 cr\xe8me\r\n" in out


def test_two_megabyte_body(client: MilterClient) -> None:
    line = b"0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n"
    body = line * (2 * 1024 * 1024 // len(line) + 1)
    raw = message(2, body=body)
    t0 = time.monotonic()
    res = client.send_message(raw)
    assert time.monotonic() - t0 < 20
    assert_inbound_untouched(res, raw, client)
    raw = message(2, extra=OUTBOUND_EXTRA, body=body)
    res = client.send_message(raw, auth="user1@sender.test")
    assert sorted(m.index for m in res.mods if m.is_delete and m.name.lower() == "received") == [1, 2, 3]
    assert without(delivered(res, raw, client), ADDED_INBOUND) == without(raw, STRIPPED)


def test_queue_id_appears_in_the_log(client: MilterClient, served: MailwardenProcess) -> None:
    res = client.send_message(message(49))
    assert res.code == "554"
    qid = client.queue_id
    deadline = time.monotonic() + 5
    while not re.search(rf"{qid}\b.*554", served.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(rf"{qid}\b.*554 5\.4\.0", served.log()), served.log()[-2000:]


@pytest.mark.root  # chown to a group it is not in
@pytest.mark.parametrize(("mode", "group"), [("0640", "root"), ("0660", "postfix")])
def test_socket_mode_and_group_come_from_the_config(
    mailwarden_factory: Callable[..., MailwardenProcess], mode: str, group: str
) -> None:
    import grp
    import stat

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        pytest.skip(f"no group {group} on this machine")
    proc = mailwarden_factory(f'[milter]\nsocket_mode = "{mode}"\nsocket_group = "{group}"\n')
    st = proc.socket_path.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == int(mode, 8)
    assert st.st_gid == gid


def test_a_failure_at_a_reply_less_step_temp_fails_that_message_only(
        mailwarden_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A real fault: the spool directory vanishes, so writing a body past the threshold fails in
    # the body step, which sends no reply. The message must get 451 4.3.0 at end of message.
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = mailwarden_factory("[milter]\nspool_threshold = 100\n", env={"TMPDIR": str(spool)})
    big = message(1, body=b"x" * 70 + b"\r\n" * 20)
    with MilterClient.connect(proc.spec) as mc:
        assert mc.send_message(big).verdict == "accept"  # spooled while the directory exists
        spool.rmdir()
        res = mc.send_message(big)
        assert (res.stage, res.code, res.dsn) == ("eom", "451", "4.3.0"), res
        qid = mc.queue_id
        assert mc.send_message(message(1)).verdict == "accept"  # the next message is unaffected
    deadline = time.monotonic() + 5
    while "cannot spool the body" not in proc.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    # One line naming the message and the cause, no traceback.
    assert re.search(rf"{qid}: cannot spool the body, message temp-failed: \[Errno 2\]", proc.log()), \
        proc.log()[-2000:]
    assert "Traceback" not in proc.log()
