"""Aggregate reports, pure: intervals, grouping, naming, the XML against RFC 7489's schema, and a
round trip through an independent parser (parsedmarc)."""

from __future__ import annotations

import gzip
import ipaddress
import random
from collections import Counter

import pytest
from reportsupport import BASE, DAY0, parsed, row, schema

from mailwarden.reports.aggregate import (
    Metadata,
    build,
    group,
    interval_length,
    interval_start,
    report_id,
)

META = Metadata("Receiver Org", "dmarc@rcv.example", "https://rcv.example/dmarc", "rcv.example")


@pytest.mark.parametrize("ri,hours", [
    (86400, 24), (3600, 1), (1, 1), (0, 1), (7200, 2), (5 * 3600, 4), (10 * 3600, 8),
    (13 * 3600, 12), (23 * 3600, 12), (7 * 86400, 24), (2**32 - 1, 24),
])
def test_interval_is_whole_hours_dividing_a_day_at_most_a_day(ri, hours):
    assert interval_length(ri) == hours * 3600


def test_intervals_are_aligned_to_utc_hours_and_days():
    t = DAY0 + 5 * 3600 + 1234
    assert interval_start(t, 3600) == DAY0 + 5 * 3600
    assert interval_start(t, 4 * 3600) == DAY0 + 4 * 3600
    assert interval_start(t, 86400) == DAY0
    for length in (3600 * h for h in (1, 2, 3, 4, 6, 8, 12, 24)):
        assert (interval_start(t, length) - DAY0) % length == 0


def test_grouping_counts_rows_with_the_same_tuple():
    rows = [row(), row(time=BASE.time + 5), row(source_ip="192.0.2.2"), row(disposition="reject"),
            row(dkim=()), row(override="sampled_out"), row(spf_result="fail"), row()]
    counts = {g.source_ip + g.disposition + str(g.dkim) + str(g.override) + g.spf[2]: n
              for g, n in group(rows)}
    assert sorted(counts.values()) == [1, 1, 1, 1, 1, 3]
    assert sum(n for _, n in group(rows)) == len(rows)


def test_naming_and_subject_follow_rfc7489_7_2_1_1():
    report = build([row()], "sender.example", DAY0, DAY0 + 86400, META)
    assert report.report_id == report_id("rcv.example", "sender.example", DAY0)
    assert report.filename("rcv.example") == (
        f"rcv.example!sender.example!{DAY0}!{DAY0 + 86399}!{report.report_id}.xml.gz")
    assert report.subject("rcv.example") == (
        f"Report Domain: sender.example Submitter: rcv.example Report-ID: <{report.report_id}>")
    assert gzip.decompress(report.gzipped()) == report.xml
    # the same report on another host or a retry has the same id; another interval does not
    assert build([row()], "sender.example", DAY0, DAY0 + 86400, META).report_id == report.report_id
    assert report_id("rcv.example", "sender.example", DAY0 + 86400) != report.report_id


def _random_row(rnd: random.Random, i: int):
    return row(
        time=DAY0 + rnd.randrange(86400),
        source_ip=rnd.choice(["192.0.2.1", "198.51.100.7", "2001:db8::1", "2001:db8:0:0:0:0:0:2"]),
        envelope_from=rnd.choice(["sender.example", "", "bounce.sender.example"]),
        envelope_to=rnd.choice(["rcpt.test", "", "other.test"]),
        spf_result=rnd.choice(["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"]),
        spf_scope=rnd.choice(["mfrom", "helo"]),
        dkim=tuple((rnd.choice(["sender.example", "esp.example"]), rnd.choice(["s1", ""]),
                    rnd.choice(["pass", "fail", "neutral", "policy", "temperror", "permerror"]))
                   for _ in range(rnd.randrange(3))),
        dkim_aligned=rnd.choice(["pass", "fail"]), spf_aligned=rnd.choice(["pass", "fail"]),
        disposition=rnd.choice(["none", "quarantine", "reject"]),
        override=rnd.choice(["", "sampled_out", "testing", "report_only", "exempt_network",
                             "exempt_recipient", "from_header", "something_new"]),
        p=rnd.choice(["none", "quarantine", "reject"]), sp=rnd.choice(["none", "reject"]),
        adkim=rnd.choice("rs"), aspf=rnd.choice("rs"), pct=rnd.randrange(101),
        fo=rnd.choice(["0", "1", "d:s"]),
    )


@pytest.mark.parametrize("seed", range(20))
def test_random_reports_validate_and_parse_to_the_recorded_counts(seed):
    rnd = random.Random(seed)
    rows = [_random_row(rnd, i) for i in range(rnd.randrange(1, 60))]
    report = build(rows, "sender.example", DAY0, DAY0 + 86400, META)
    schema().validate(report.xml)  # raises with the path of the first error
    theirs = parsed(report.gzipped())
    assert sum(r["count"] for r in theirs["records"]) == len(rows) == report.count
    assert len(theirs["records"]) == len(group(rows))
    md = theirs["report_metadata"]
    assert (md["org_name"], md["org_email"], md["report_id"]) == ("Receiver Org", "dmarc@rcv.example",
                                                                  report.report_id)
    assert _per_ip(r["source"]["ip_address"] for r in theirs["records"] for _ in range(r["count"])) == (
        _per_ip(r.source_ip for r in rows))


def _per_ip(ips):
    return Counter(ipaddress.ip_address(ip).compressed for ip in ips)


def test_the_schema_catches_what_it_should():
    """The check can fail: a report with a disposition the RFC does not know does not validate."""
    import xmlschema

    bad = build([row(disposition="tempfail")], "sender.example", DAY0, DAY0 + 86400, META)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema().validate(bad.xml)


def test_published_policy_is_the_latest_rows():
    rows = [row(p="none", time=DAY0 + 10), row(p="reject", sp="quarantine", pct=50, time=DAY0 + 20)]
    xml = build(rows, "sender.example", DAY0, DAY0 + 86400, META).xml.decode()
    assert "<p>reject</p>" in xml and "<sp>quarantine</sp>" in xml and "<pct>50</pct>" in xml


def test_override_reasons_map_to_rfc_types():
    xml = build([row(override="report_only"), row(override="testing"), row(override="new_kind")],
                "sender.example", DAY0, DAY0 + 86400, META).xml.decode()
    assert "<type>local_policy</type>" in xml and "<comment>report mode</comment>" in xml
    assert "<type>other</type>" in xml and "<comment>t=y: the domain owner is testing</comment>" in xml
    assert "<comment>new_kind</comment>" in xml
