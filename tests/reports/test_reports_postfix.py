"""End to end through a real Postfix: inbound mail is recorded by `mailwarden serve`, then
`mailwarden reports send` mails the reports through the same Postfix to the sink, DKIM-signed
for the report From domain; the sink's messages parse (parsedmarc) and the counts equal the
messages sent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.dkim.dkimsupport import ZONE as DKIM_ZONE
from tests.dkim.dkimsupport import results, safe_keys
from tests.support.postfix import REMOTE_CLIENT, unique_address

from mailwarden.cli import main
from mailwarden.reports.store import open_store

pytestmark = pytest.mark.postfix

ZONE = DKIM_ZONE.read_text() + f"""
good.example.          IN TXT "v=spf1 ip4:{REMOTE_CLIENT} -all"
_dmarc.good.example.   IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@good.example"
reject.example.        IN TXT "v=spf1 -all"
_dmarc.reject.example. IN TXT "v=DMARC1; p=reject; rua=mailto:agg@reject.example"
"""


def message(from_addr: str, rcpt: str) -> bytes:
    return (f"From: {from_addr}\r\nTo: {rcpt}\r\nSubject: reports e2e\r\nMessage-ID: <{rcpt}>\r\n"
            "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nhello\r\n").encode()


def wait_rows(url: str, domain: str, count: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        found = len(open_store(url).rows(domain, 0, 2**40))
        if found >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_recorded_through_postfix_and_reports_mailed_through_it(
        postfix, postfix_mailwarden, mailwarden_factory, tmp_path: Path) -> None:
    import parsedmarc

    url = f"sqlite:///{tmp_path}/reports.db"
    zone = tmp_path / "zone.txt"
    zone.write_text(ZONE)
    mailwarden_factory(f'[reports]\nstore = "{url}"\n', zone_text=ZONE, socket_path=postfix.alt_milter_path)
    sent = {"good.example": 3, "reject.example": 2}
    for domain, count in sent.items():
        for _ in range(count):
            rcpt = unique_address()
            res = postfix.submit(postfix.alt, message(f"a@{domain}", rcpt), f"b@{domain}", [rcpt],
                                 client_addr=REMOTE_CLIENT)
            assert res.code == (250 if domain == "good.example" else 550), str(res)
    assert {d: wait_rows(url, d, n) for d, n in sent.items()} == sent

    keys = safe_keys(tmp_path / "keys")
    config = tmp_path / "reports.toml"
    config.write_text(
        f'[reports]\nstore = "{url}"\nrelay = "127.0.0.1:{postfix.inbound}"\n'
        'from = "dmarc-reports@example.com"\norg_name = "CI Receiver"\n'
        f'[dkim.keys.rsa]\ndomain = "example.com"\nselector = "rsa"\nkey_file = "{keys}/rsa.key"\n'
        '[[dkim.sign]]\nmatch = ["example.com"]\nkeys = ["rsa"]\n')
    tomorrow = str(int(time.time()) + 2 * 86400)
    assert main(["reports", "send", "--config", str(config), "--zone", str(zone), "--now", tomorrow]) == 0

    for domain, count in sent.items():
        rcpt = "dmarc@good.example" if domain == "good.example" else "agg@reject.example"
        delivery = postfix.wait_delivery(rcpt)
        # Signed by `reports send` for example.com, with the real clock: verified at the real time
        # (dkimsupport.NOW is the time of import, and the 300 s drift allowed ran out in slow runs).
        assert results(delivery.data, now=time.time()) == ["pass"]
        report = parsedmarc.parse_report_email(delivery.data, offline=True, always_use_local_files=True)
        assert report["report_type"] == "aggregate"
        agg = report["report"]
        assert agg["policy_published"]["domain"] == domain
        assert sum(r["count"] for r in agg["records"]) == count
        dispositions = {r["policy_evaluated"]["disposition"] for r in agg["records"]}
        assert dispositions == ({"none"} if domain == "good.example" else {"reject"})
    # A second run sends nothing: the intervals are marked as sent.
    postfix.sink.clear()
    assert main(["reports", "send", "--config", str(config), "--zone", str(zone), "--now", tomorrow]) == 0
    postfix.assert_no_delivery("dmarc@good.example", wait=1.0)
    postfix.assert_no_delivery("agg@reject.example", wait=0.1)


def test_a_destination_refused_for_good_does_not_make_the_others_get_it_twice(
        postfix, postfix_mailwarden, tmp_path: Path) -> None:
    from reportsupport import DAY0, row

    from mailwarden.config.reports import ReportsSection
    from mailwarden.dmarc import psl
    from mailwarden.reports.deliver import Sender
    from mailwarden.reports.schedule import send_due
    from mailwarden.resolver.static import StaticZone

    ok, bad = unique_address(domain="two.example"), unique_address(domain="two.example")
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    store.insert([row(policy_domain="two.example", rua=f"mailto:{ok},mailto:{bad}")], "h")
    lst = psl.load()
    sender = Sender("dmarc@rcv.example", f"127.0.0.1:{postfix.inbound}")
    args = (ReportsSection(receiver="rcv.example"), sender, StaticZone.from_text(""),
            lambda d: psl.org_domain(d, lst), DAY0 + 2 * 86400, "h")
    with postfix.settings(smtpd_recipient_restrictions=f"check_recipient_access inline:{{ {bad}=REJECT }}, "
                          "permit_mynetworks, reject"):
        result = send_due(store, *args)
    assert result.failed == 0 and len(result.sent) == 1, result
    assert any(bad in n and ("550" in n or "554" in n) for n in result.notes), result.notes
    postfix.wait_delivery(ok)
    assert store.sent("two.example", DAY0)
    assert send_due(store, *args).sent == []  # marked: `ok` does not get it a second time
