"""The test client's own helpers: message splitting and Postfix's edit semantics (facts doc §2)."""

from __future__ import annotations

import pytest
from tests.support.milterclient import Mod, apply_mods, parse_message, parse_socket

RAW = (b"Received: from hop1 by relay1\n\tfolded\nReceived: from hop2 by relay2\n"
       b"From: a@sender.test\nX-Mailer: xm\nUser-Agent: ua\nX-Folded: first\n  second\n\n"
       b"Body line 1\n")
OWN = b"Received: from client.test by mx.ci.test (Postfix)\r\n\tfor <b@rcpt.test>\r\n"


def test_parse_message_keeps_value_bytes_and_joins_folds_with_lf() -> None:
    msg = parse_message(b"X-A:  two\r\nX-B:\tcaf\xe9\r\n\tfold\r\nX-C:\r\n\r\nbody\nline2")
    assert msg.headers == [(b"X-A", b"  two"), (b"X-B", b"\tcaf\xe9\n\tfold"), (b"X-C", b"")]
    assert msg.body == b"body\r\nline2\r\n"


def test_apply_mods_like_postfix() -> None:
    mods = [Mod("chgheader", "Received", b"", 1), Mod("chgheader", "X-Mailer", b"", 1),
            Mod("chgheader", "user-agent", b"", 1), Mod("insheader", "X-Ins-Idx0", b" zero", 0),
            Mod("insheader", "X-Ins-Idx1", b" one", 1), Mod("addheader", "X-Added", b" a\n\tb")]
    out = apply_mods(RAW, mods, mta_received=OWN)
    assert out == (b"X-Ins-Idx0: zero\r\nX-Ins-Idx1: one\r\n" + OWN
                   + b"Received: from hop2 by relay2\r\nFrom: a@sender.test\r\n"
                   b"X-Folded: first\r\n  second\r\nX-Added: a\r\n\tb\r\n\r\nBody line 1\r\n")


def test_changing_an_absent_occurrence_appends_and_deleting_it_does_nothing() -> None:
    out = apply_mods(RAW, [Mod("chgheader", "Received", b"", 5),
                           Mod("chgheader", "Received", b" REPLACED", 3)])
    assert out.replace(b"\r\n", b"\n") == RAW.replace(b"\n\nBody", b"\nReceived: REPLACED\n\nBody")


def test_without_leadspc_postfix_writes_colon_space() -> None:
    out = apply_mods(b"A: 1\n\n", [Mod("addheader", "X", b"v")], leadspc=False)
    assert out == b"A: 1\r\nX: v\r\n\r\n"


def test_sockets_stay_on_loopback() -> None:
    assert parse_socket("inet:8891@127.0.0.1")[1] == ("127.0.0.1", 8891)
    assert parse_socket("unix:/run/x.sock")[1] == "/run/x.sock"
    with pytest.raises(ValueError):
        parse_socket("inet:8891@192.0.2.1")
