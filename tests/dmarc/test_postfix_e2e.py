"""End to end through a real Postfix: DMARC reject is a 550 at the SMTP client, quarantine lands
in Postfix's hold queue, a pass is delivered with our one Authentication-Results header."""

from __future__ import annotations

import time

import pytest
from dmarcsupport import DATA
from tests.support.postfix import REMOTE_CLIENT, unique_address

pytestmark = pytest.mark.postfix

# The client is REMOTE_CLIENT (XCLIENT): these sender domains' SPF records authorize it or not.
E2E_ZONE = (DATA / "policies.zone").read_text() + f"""
good.example.          IN TXT "v=spf1 ip4:{REMOTE_CLIENT} -all"
_dmarc.good.example.   IN TXT "v=DMARC1; p=reject"
"""
CONFIG = '[policy]\nauthserv_id = "mx.ci.test"\n'


@pytest.fixture
def mw(postfix, mailwarden_factory):
    return mailwarden_factory(CONFIG, zone_text=E2E_ZONE, socket_path=postfix.alt_milter_path)


def message(from_addr: str, rcpt: str, extra: str = "") -> bytes:
    return (f"{extra}From: {from_addr}\r\nTo: {rcpt}\r\nSubject: dmarc e2e\r\n"
            f"Message-ID: <{rcpt}>\r\nDate: Sun, 22 Nov 2026 04:00:00 +0000\r\n\r\nhello\r\n").encode()


def test_dmarc_reject_is_550_at_the_client(postfix, mw):
    rcpt = unique_address()
    res = postfix.submit(postfix.alt, message("a@reject.example", rcpt), "x@reject.example", [rcpt])
    assert (res.code, res.stage) == (550, "data"), str(res)
    assert "5.7.1 rejected by DMARC policy for reject.example" in res.text
    postfix.assert_no_delivery(rcpt)


def test_quarantine_goes_to_the_hold_queue(postfix, mw):
    rcpt = unique_address()
    res = postfix.submit(postfix.alt, message("a@quar.example", rcpt), "x@quar.example", [rcpt])
    assert res.ok, str(res)
    deadline = time.monotonic() + 5
    while res.queue_id not in postfix.hold_queue() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert res.queue_id in postfix.hold_queue()
    time.sleep(0.3)
    assert not [d for d in postfix.sink.deliveries if rcpt in d.rcpts]


def test_pass_is_delivered_with_one_authentication_results(postfix, mw):
    rcpt = unique_address()
    forged = "Authentication-Results: mx.ci.test; dmarc=pass header.from=good.example\r\n"
    res = postfix.submit(postfix.alt, message("a@good.example", rcpt, forged), "bounce@good.example", [rcpt])
    assert res.ok, str(res)
    delivery = postfix.wait_delivery(rcpt)
    head, _ = delivery.headers_and_body()
    lines = head.decode().split("\r\n")
    # Ours is the very first header, above Postfix's own Received; the forged one is gone.
    assert lines[0].startswith("Authentication-Results: mx.ci.test;")
    ars = [ln for ln in lines if ln.lower().startswith("authentication-results:")]
    assert len(ars) == 1
    unfolded = head.decode().replace("\r\n\t", " ")
    assert "spf=pass smtp.mailfrom=bounce@good.example" in unfolded
    assert "dmarc=pass" in unfolded and "header.from=good.example" in unfolded


@pytest.mark.parametrize("trusted, expected", [(None, 250), ("[]", 550)])
def test_local_mail_is_the_hosts_own_by_default(postfix, mailwarden_factory, trusted, expected):
    # A client on 127.0.0.1 (cron, web apps, Postfix's sendmail) is trusted by default, as
    # OpenDKIM's InternalHosts and OpenDMARC's IgnoreHosts: its p=reject From is not rejected.
    config = CONFIG + (f"trusted_networks = {trusted}\n" if trusted is not None else "")
    mailwarden_factory(config, zone_text=E2E_ZONE, socket_path=postfix.alt_milter_path)
    rcpt = unique_address()
    res = postfix.submit(postfix.alt, message("a@reject.example", rcpt), "x@reject.example", [rcpt],
                         client_addr=None)
    assert (res.code, res.stage) == (expected, "data"), str(res)
    if expected == 250:
        head, _ = postfix.wait_delivery(rcpt).headers_and_body()
        assert b"dmarc=" not in head  # outbound: no DMARC verdict at all
