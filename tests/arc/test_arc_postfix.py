"""End to end through a real Postfix: a list host seals, the receiver trusts it or not.

One Postfix, its alt listener, three mailwarden configurations in turn: the list host (its MX
pass checks the author's mail; its outbound pass, the list re-sending with a footer and a subject
tag, seals), then the final receiver, trusting the list as a sealer or not, under p=reject.
"""

from __future__ import annotations

import re

import pytest
from arcsupport import KEYS, MSG, ZONE, dkim_signed, ours, theirs
from tests.support.postfix import REMOTE_CLIENT, unique_address

pytestmark = pytest.mark.postfix

LIST_IP = "203.0.113.77"  # in the test Postfix's mynetworks (relaying allowed)
# The author's SPF authorizes the client the tests present (XCLIENT).
ZONE_TEXT = ZONE.read_text().replace("ip4:192.0.2.1", f"ip4:{REMOTE_CLIENT}")
LIST_CONFIG = f"""
[policy]
authserv_id = "mx.list.example.org"
[dkim]
require_safe_keys = false
[dkim.keys.list]
domain = "list.example.org"
selector = "rsa"
key_file = "{KEYS / 'rsa.key'}"
[[arc.seal]]
key = "list"
direction = "outbound"
"""
RECEIVER_CONFIG = '[policy]\nauthserv_id = "mx.ci.test"\n[arc]\ntrusted_sealers = {trusted}\n'


def list_resend(raw: bytes) -> bytes:
    """What the list software does: a subject tag and a footer (the author's DKIM breaks)."""
    raw = raw.replace(b"Subject: ", b"Subject: [list] ", 1)
    return raw.replace(b"attached.\r\n", b"attached.\r\n-- \r\nlist footer\r\n", 1)


@pytest.fixture
def sealed_by_list(postfix, mailwarden_factory) -> bytes:
    mw = mailwarden_factory(LIST_CONFIG, zone_text=ZONE_TEXT, socket_path=postfix.alt_milter_path)
    try:
        member = unique_address("list-in")
        author = dkim_signed(MSG.replace(b"To: list@list.example.org", f"To: {member}".encode()))
        res = postfix.submit(postfix.alt, author, "alice@sender.example", [member])
        assert res.ok, str(res)
        received = postfix.wait_delivery(member).data
        assert b"dkim=pass" in received and b"ARC-Seal" not in received  # the MX pass does not seal
        out = unique_address("list-out")
        # The list re-sends from the host itself (loopback: outbound).
        res = postfix.submit(postfix.alt, list_resend(received), "list-bounces@list.example.org", [out],
                             client_addr=None)
        assert res.ok, str(res)
        return postfix.wait_delivery(out).data
    finally:
        mw.stop()


def test_the_list_seal_sits_on_top_and_dkimpy_verifies_it(sealed_by_list: bytes) -> None:
    lines = sealed_by_list.split(b"\r\n")
    assert lines[0].startswith(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=list.example.org; s=rsa;")
    names = [ln.split(b":")[0] for ln in lines if ln[:1] not in (b" ", b"\t")]
    # Above Postfix's own Received, which the AMS does not (and could not) sign.
    assert names[:4] == [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results", b"Received"]
    first_received = re.search(rb"\r\nReceived: (.*?)\r\n(?=\S)", sealed_by_list, re.S)
    assert first_received is not None and b"(Postfix)" in first_received.group(1)
    aar_text = sealed_by_list.split(b"ARC-Authentication-Results: ")[1].split(b"\r\nReceived")[0]
    aar = b" ".join(aar_text.split())
    assert aar.startswith(b"i=1; mx.list.example.org;") and b"dkim=pass header.d=sender.example" in aar
    assert theirs(sealed_by_list) == "pass" and ours(sealed_by_list).result == "pass"


@pytest.mark.parametrize("trusted", ['["list.example.org"]', "[]", '["other.example"]'])
def test_the_receiver_delivers_under_p_reject_only_when_it_trusts_the_sealer(
        postfix, mailwarden_factory, sealed_by_list: bytes, trusted: str) -> None:
    mailwarden_factory(RECEIVER_CONFIG.format(trusted=trusted), zone_text=ZONE_TEXT,
                       socket_path=postfix.alt_milter_path)
    rcpt = unique_address()
    res = postfix.submit(postfix.alt, sealed_by_list, "list-bounces@list.example.org", [rcpt],
                         client_addr=LIST_IP)
    if trusted != '["list.example.org"]':
        assert (res.code, res.stage) == (550, "data"), str(res)
        assert "5.7.1 rejected by DMARC policy for sender.example" in res.text
        postfix.assert_no_delivery(rcpt)
        return
    assert res.ok, str(res)
    head, _ = postfix.wait_delivery(rcpt).headers_and_body()
    ar = b" ".join(head.split(b"Authentication-Results: mx.ci.test;")[1].split(b"\r\nReceived:")[0].split())
    assert b"dkim=fail" in ar and b"dmarc=fail" in ar and b"policy.override=arc" in ar, ar
    assert f"arc=pass header.oldest-pass=0 smtp.remote-ip={LIST_IP}".encode() in ar, ar
