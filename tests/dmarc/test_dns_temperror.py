"""A temporary DNS failure never becomes a permanent DMARC reject.

When nothing passes aligned and the check of an identifier that would have aligned failed
temporarily (the DKIM key, the SPF record, an SPF include), DMARC is temperror and the message
is temp-failed (451 4.7.5), so the sender retries. Checked through the milter protocol against
`mailwarden serve`, and end to end through a real Postfix.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.support.milterclient import MilterClient
from tests.support.postfix import REMOTE_CLIENT, unique_address

from mailwarden.core.model import Header
from mailwarden.core.wire import parse_message
from mailwarden.dkim.keys import load_private_key
from mailwarden.dkim.sign import Signer, SigningKey

DKIM_DATA = Path(__file__).resolve().parents[1] / "data" / "dkim"
ZONE = (DKIM_DATA / "test.zone").read_text() + f"""
_dmarc.example.com.      IN TXT "v=DMARC1; p=reject"
example.com.             IN TXT "v=spf1 -all"
spfslow.example.         IN A   192.0.2.30
_dmarc.spfslow.example.  IN TXT "v=DMARC1; p=reject"
_dmarc.inc.example.      IN TXT "v=DMARC1; p=reject"
inc.example.             IN TXT "v=spf1 include:_spf.slowinc.example -all"
_dmarc.hard.example.     IN TXT "v=DMARC1; p=reject"
hard.example.            IN TXT "v=spf1 -all"
_dmarc.relaxed.example.  IN TXT "v=DMARC1; p=none"
relaxed.example.         IN TXT "v=spf1 include:_spf.slowinc.example -all"
ok.example.              IN TXT "v=spf1 ip4:{REMOTE_CLIENT} ip4:192.0.2.1 -all"
_dmarc.ok.example.       IN TXT "v=DMARC1; p=reject"
;! TIMEOUT spfslow.example. TXT
;! SERVFAIL _spf.slowinc.example.
"""
CONFIG = '[policy]\nauthserv_id = "mx.ci.test"\n'


def message(author: str, rcpt: str, selector: str | None = None, domain: str = "example.com") -> bytes:
    raw = (f"From: {author}\r\nTo: {rcpt}\r\nSubject: temperror\r\nMessage-ID: <{rcpt}>\r\n"
           "Date: Sun, 22 Nov 2026 04:00:00 +0000\r\n\r\nhello\r\n").encode()
    if selector is None:
        return raw
    parsed = parse_message(raw)
    key = SigningKey("k", domain, selector, load_private_key(DKIM_DATA / "rsa.key", require_safe=False))
    [sig] = Signer("relaxed/relaxed", ("From", "To", "Subject"), ()).sign(
        [key], parsed.headers, lambda: [parsed.body], time.time())
    return Header("DKIM-Signature", sig).raw() + b"\r\n" + raw


# (author, envelope sender, DKIM selector on example.com or None, expected SMTP code)
CASES = {
    # The aligned signature's key lookup times out; SPF fails: temperror, not fail.
    "dkim-key-timeout": ("a@example.com", "x@example.com", "slow", 451),
    "dkim-key-servfail": ("a@example.com", "x@example.com", "broken", 451),
    # The sender domain's SPF record times out, no signature.
    "spf-record-timeout": ("a@spfslow.example", "x@spfslow.example", None, 451),
    # An include: of the sender's SPF record fails.
    "spf-include-servfail": ("a@inc.example", "x@inc.example", None, 451),
    # The failing key's signature is not aligned with the From domain: a plain fail.
    "unaligned-temperror-rejects": ("a@hard.example", "x@hard.example", "slow", 550),
    # p=none: a temporary error changes nothing.
    "p-none-is-delivered": ("a@relaxed.example", "x@relaxed.example", None, 250),
    # Something passes aligned: the temperror elsewhere does not matter.
    "aligned-pass-wins": ("a@ok.example", "x@ok.example", "slow", 250),
}


@pytest.mark.parametrize("case", CASES)
def test_milter_tempfails_what_dns_could_not_decide(case, mailwarden_factory):
    author, sender, selector, expected = CASES[case]
    proc = mailwarden_factory(CONFIG, zone_text=ZONE)
    with MilterClient.connect(proc.spec) as mc:
        res = mc.send_message(message(author, "b@rcpt.test", selector), f"<{sender}>")
    got = int(res.code) if res.code else 250
    assert (got, res.verdict) == (expected, {250: "accept", 451: "tempfail", 550: "reject"}[expected]), (
        res, proc.log()[-2000:])
    if expected == 451:
        assert res.dsn == "4.7.5", res


@pytest.mark.postfix
@pytest.mark.parametrize("case", ["dkim-key-timeout", "spf-include-servfail", "unaligned-temperror-rejects"])
def test_postfix_client_sees_451_never_550_on_a_dns_failure(case, postfix, mailwarden_factory):
    author, sender, selector, expected = CASES[case]
    mailwarden_factory(CONFIG, zone_text=ZONE, socket_path=postfix.alt_milter_path)
    rcpt = unique_address()
    res = postfix.submit(postfix.alt, message(author, rcpt, selector), sender, [rcpt])
    assert (res.code, res.stage) == (expected, "data"), str(res)
    postfix.assert_no_delivery(rcpt)
