"""The callback adapter in-process: libmilter's context faked (tests/support/fakemilter.py), the
adapter, pipeline and stages real. Microseconds a message, so the callback logic is tested here;
test_milter_socket.py keeps the same behaviour tested over the real socket and libmilter, and
the first test below checks that the two agree.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.adapter.test_milter_socket import OUTBOUND_EXTRA, message
from tests.support import builders
from tests.support.fakemilter import FakeSession
from tests.support.milterclient import P_NR_HDR, P_NR_MAIL, MilterClient, apply_mods
from tests.support.postfix import MailwardenProcess

from mailwarden.bootstrap import Runtime


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("zone") / "empty.zone"
    path.write_text("")
    return str(path)  # every query answered from it (NXDOMAIN): no live DNS


@pytest.fixture(scope="module")
def runtime(zone: str) -> Runtime:
    return builders.runtime(zones=[zone])  # the embedded defaults


@pytest.fixture
def session(runtime: Runtime) -> Iterator[FakeSession]:
    s = FakeSession(runtime)
    yield s
    s.close()


@pytest.fixture(scope="module")
def served() -> Iterator[MailwardenProcess]:
    proc = MailwardenProcess(config="[milter]\nworkers = 1\n").start()
    yield proc
    proc.close()


@pytest.mark.parametrize("case", ["inbound", "outbound", "hops"])
def test_the_fake_context_answers_as_libmilter_over_the_socket(
        runtime: Runtime, served: MailwardenProcess, case: str) -> None:
    raw = {"inbound": message(2), "outbound": message(3, OUTBOUND_EXTRA), "hops": message(50)}[case]
    kw = {"auth": "user1@sender.test"} if case == "outbound" else {}
    with MilterClient.connect(served.spec) as mc:
        mc.optneg()
        wire = mc.send_message(raw, **kw)  # type: ignore[arg-type]
        protocol = mc.protocol
    fake = FakeSession(runtime)
    got = fake.send_message(raw, **kw)  # type: ignore[arg-type]
    fake.close()
    assert fake.protocol == protocol
    # Authentication-Results carries the host's name and the fake's queue id: compare the rest.
    def same(mods: list) -> list:  # type: ignore[type-arg]
        return [m for m in mods if m.name.lower() != "authentication-results"]
    assert (got.action, got.stage, got.reply) == (wire.action, wire.stage, wire.reply)
    assert same(got.mods) == same(wire.mods)
    assert [m.op for m in got.mods] == [m.op for m in wire.mods]


def test_negotiates_reply_less_steps_but_mail_from_when_spf_runs(session: FakeSession) -> None:
    assert session.protocol & P_NR_HDR
    assert not session.protocol & P_NR_MAIL


@pytest.mark.parametrize(("hops", "stage"), [(48, "eom"), (49, "eoh")])
def test_hopcount_decides_at_end_of_headers(session: FakeSession, hops: int, stage: str) -> None:
    res = session.send_message(message(hops))
    assert res.stage == stage, res
    if stage == "eoh":
        assert (res.code, res.dsn, res.text) == ("554", "5.4.0", "Error: too many hops")


def test_outbound_deletes_highest_first(session: FakeSession) -> None:
    raw = message(3, OUTBOUND_EXTRA)
    res = session.send_message(raw, daemon_name="ORIGINATING")
    deletes = [(m.name.lower(), m.index) for m in res.mods if m.is_delete]
    assert [i for n, i in deletes if n == "received"] == [4, 3, 2, 1]
    out = apply_mods(raw, res.mods)
    assert b"User-Agent" not in out and b"X-Keep:value-no-space" in out


def test_state_resets_between_messages_of_one_connection(session: FakeSession) -> None:
    assert session.send_message(message(49)).code == "554"
    res = session.send_message(message(1))
    assert res.stage == "eom" and res.verdict in ("accept", "continue"), res


def test_an_error_at_a_reply_less_step_temp_fails_at_the_next_reply(
        zone: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The body step sends no reply: a spool that cannot be written must show at end of message.
    session = FakeSession(builders.runtime("[milter]\nspool_threshold = 10\n", zones=[zone]))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "absent"))  # the spool directory is gone
    res = session.send_message(message(1, body=b"x" * 100 + b"\r\n"))
    monkeypatch.undo()
    assert (res.stage, res.code, res.dsn) == ("eom", "451", "4.3.0"), res
    assert session.send_message(message(1)).stage == "eom"
