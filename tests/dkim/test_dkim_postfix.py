"""End to end through a private real Postfix: signed on the ORIGINATING listener, verified at the sink,
and the Authentication-Results header of an inbound copy names every signature."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from dkimsupport import MSG, ZONE, opendkim_verify, results, safe_keys, sign_config
from tests.support.postfix import unique_address

pytestmark = pytest.mark.postfix


def test_originating_mail_is_signed_and_verifies_at_the_sink(
    postfix_factory: Callable[..., object], mailwarden_factory: Callable[..., object], tmp_path: Path
) -> None:
    inst = postfix_factory()
    keys = safe_keys(tmp_path / "keys")
    mailwarden_factory(sign_config(keys), socket_path=inst.milter_path, zone_text=ZONE.read_text())  # type: ignore[attr-defined]
    rcpt = unique_address()
    res = inst.submit(inst.originating, MSG, "alice@example.com", [rcpt])  # type: ignore[attr-defined]
    assert res.ok, res
    delivered = inst.wait_delivery(rcpt).data  # type: ignore[attr-defined]
    # Both signatures sit above Postfix's own Received header (insheader index 0).
    head = delivered.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert names[:3] == [b"DKIM-Signature", b"DKIM-Signature", b"Received"], names
    assert results(delivered) == ["pass", "pass"]
    assert opendkim_verify(delivered, tmp_path).count("dkim=pass") == 2

    # The same bytes, received on the inbound listener: verified, one dkim= clause per signature.
    rcpt2 = unique_address()
    res = inst.submit(inst.inbound, delivered, "alice@example.com", [rcpt2])  # type: ignore[attr-defined]
    assert res.ok, res
    inbound = inst.wait_delivery(rcpt2).data  # type: ignore[attr-defined]
    ar = re.search(rb"Authentication-Results:(.*?)\r\n(?![ \t])", inbound, re.S)
    assert ar is not None, inbound[:2000]
    text = b" ".join(ar.group(1).split()).decode()
    clauses = [dict(re.findall(r"([\w.]+)=(\S+)", c)) for c in text.split(";") if "dkim=" in c]
    got = sorted((c["dkim"], c.get("header.d"), c.get("header.a"), c.get("header.s"),
                  # header.b is quoted when it holds "/" or "+" (not token characters).
                  len(c.get("header.b", "").strip('"'))) for c in clauses)
    assert got == [("pass", "example.com", "ed25519-sha256", "ed", 8),
                   ("pass", "example.com", "rsa-sha256", "rsa", 8)], text
