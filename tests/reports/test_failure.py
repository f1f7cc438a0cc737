"""Failure reports (RFC 7489 section 7.3, RFC 6591 AFRF): fo= options, the report format read by
parsedmarc, and through the milter: sent from the writer thread, limited per domain and hour,
external ruf= destinations verified."""

from __future__ import annotations

import email
import email.policy
import time

import pytest
from reportsupport import row
from tests.support.milterclient import MilterClient
from tests.support.postfix import SmtpSink

from mailwarden.reports.deliver import Sender
from mailwarden.reports.failure import FailureCase, afrf, wanted

FAIL = {"dkim_aligned": "fail", "spf_aligned": "fail"}


@pytest.mark.parametrize("fo,changes,expected", [
    ("0", FAIL, ["dmarc"]),
    ("0", {"dkim_aligned": "fail"}, []),  # SPF still gave an aligned pass
    ("1", {"dkim_aligned": "fail"}, ["dmarc"]),
    ("1", {}, []),
    ("d", {"dkim": (("x.example", "s", "fail"),)}, ["signature"]),  # aligned or not
    ("d", {"dkim": (("x.example", "s", "pass"),), **FAIL}, []),
    ("s", {"spf_result": "fail"}, ["spf"]),
    ("s", {"spf_result": "softfail"}, []),
    ("0:d:s", {"spf_result": "fail", "dkim": (("x", "s", "fail"),), **FAIL}, ["dmarc", "signature", "spf"]),
])
def test_fo_options(fo, changes, expected):
    assert wanted(row(fo=fo, **changes)) == expected


HEADERS = (b"From: a@sender.example\r\nTo: b@rcpt.test\r\nSubject: hi\r\nMessage-ID: <x@y>\r\n"
           b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n")


@pytest.mark.parametrize("body", [None, b"body \xc3\xa9\r\n"])
def test_afrf_is_read_by_an_independent_parser(body):
    import parsedmarc

    r = row(ruf="mailto:f@sender.example", dkim=(("sender.example", "s1", "fail"),), **FAIL)
    case = FailureCase(r, ("dmarc", "signature"), "b@sender.example", HEADERS, body,
                       "mx.test; dmarc=fail header.from=sender.example", "reject")
    data = afrf(case, Sender("dmarc@rcv.example", "127.0.0.1:25"), "f@sender.example")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert (msg.get_content_type(), msg.get_param("report-type")) == ("multipart/report", "feedback-report")
    assert [p.get_content_type() for p in msg.iter_parts()][1:] == [
        "message/feedback-report", "text/rfc822-headers" if body is None else "message/rfc822"]
    out = parsedmarc.parse_report_email(data, offline=True, always_use_local_files=True)
    assert out["report_type"] == "failure"
    report = out["report"]
    assert report["feedback_type"] == "auth-failure" and report["reported_domain"] == "sender.example"
    assert report["source"]["ip_address"] == "192.0.2.1" and report["delivery_result"] == "reject"
    assert (report["dkim_domain"], report["dkim_selector"]) == ("sender.example", "s1")
    assert report["sample_headers_only"] is (body is None)
    assert "Subject: hi" in report["sample"]


CLIENT = "203.0.113.25"
ZONE = """$TTL 300
fail.example.          IN TXT "v=spf1 -all"
_dmarc.fail.example.   IN TXT "v=DMARC1; p=quarantine; ruf=mailto:ruf@fail.example; fo=1"
ext.example.           IN TXT "v=spf1 -all"
_dmarc.ext.example.    IN TXT "v=DMARC1; p=none; ruf=mailto:ruf@collector.test; fo=1"
"""


def send(spec: str, domain: str, body: str = "hello") -> str:
    raw = f"From: a@{domain}\r\nTo: b@rcpt.test\r\nSubject: f\r\n\r\n{body}\r\n".encode()
    with MilterClient.connect(spec) as mc:
        return mc.send_message(raw, f"<b@{domain}>", ("<b@rcpt.test>",), connect={"addr": CLIENT}).verdict


@pytest.mark.parametrize("include", ["headers", "message"])
def test_failure_reports_through_the_milter_limited_and_verified(mailwarden_factory, tmp_path, include):
    import parsedmarc

    sink = SmtpSink()
    try:
        proc = mailwarden_factory(
            f'[reports]\nstore = "sqlite:///{tmp_path}/r.db"\nrelay = "127.0.0.1:{sink.port}"\n'
            f'from = "dmarc@rcv.example"\nfailure_reports = true\nfailure_rate = 2\n'
            f'failure_include = "{include}"\n', zone_text=ZONE)
        for i in range(4):
            assert send(proc.spec, "fail.example", f"body {i}") == "accept"  # quarantined: held
        assert send(proc.spec, "ext.example") == "accept"
        reports = sink.wait("ruf@fail.example", count=2, timeout=30)
        deadline = time.monotonic() + 20
        # ext.example's message came last: once it is handled, the writers are done with the rest.
        while "does not accept reports for ext.example" not in proc.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "does not accept reports for ext.example" in proc.log()
        time.sleep(1.5)  # a writer still gathering rows (one second) would send within this
        assert len(sink.deliveries) == 2  # the limit held; nothing went to the unverified collector
        for d in reports:
            out = parsedmarc.parse_report_email(d.data, offline=True, always_use_local_files=True)
            assert out["report_type"] == "failure" and out["report"]["reported_domain"] == "fail.example"
            assert out["report"]["sample_headers_only"] is (include == "headers")
            assert out["report"]["delivery_result"] == "policy"
    finally:
        sink.stop()


def test_the_mail_path_copies_no_more_messages_than_the_hourly_limit():
    """Each worker stops building failure reports for a domain past failure_rate in the hour,
    before copying the message (the store's shared count decides what is actually sent)."""
    from mailwarden.config.reports import ReportsSection
    from mailwarden.reports.failure import FailureSender
    from mailwarden.reports.recorder import Recorder
    from mailwarden.resolver.static import StaticZone

    failures = FailureSender(ReportsSection(failure_reports=True, failure_rate=2),
                             Sender("d@rcv.example", "127.0.0.1:25"), StaticZone.from_text(""), str)
    rec = Recorder("sqlite:///nowhere", failures=failures)
    failing = row(**FAIL)
    assert [rec._failure_wanted(failing) for _ in range(4)] == [True, True, False, False]
    assert rec._failure_wanted(failing._replace(time=failing.time + 3600))  # the next hour
    assert rec._failure_wanted(failing._replace(policy_domain="other.example"))


def test_the_hourly_limit_is_counted_in_the_store_for_every_worker_and_host(tmp_path):
    from mailwarden.reports.store import open_store

    url = f"sqlite:///{tmp_path}/r.db"
    a, b = open_store(url), open_store(url)
    counted = [store.count_failure("d.example", 100, 3) for store in (a, b, a, b)]
    assert counted == [True, True, True, False]
    assert a.count_failure("d.example", 101, 3) and b.count_failure("e.example", 100, 3)
