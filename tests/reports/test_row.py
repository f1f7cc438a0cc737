"""`row_from`: what one inbound DMARC evaluation records, through the real pipeline over a static
zone; and the [reports] section's checks."""

from __future__ import annotations

import pytest
from tests.support.builders import transaction as make_tx

from mailwarden.bootstrap import build_runtime
from mailwarden.config import parse
from mailwarden.core.decisions import Verdict
from mailwarden.core.model import Direction, Header
from mailwarden.errors import ConfigError
from mailwarden.reports.row import received_time, row_from

ZONE = """$TTL 300
$ORIGIN example.
sender IN TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.sender IN TXT ( "v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; fo=1:d; ri=3600; "
    "rua=mailto:a@sender.example,mailto:b@sender.example; ruf=mailto:f@sender.example" )
"""
WHEN = 1795305600


def outcome_of(tmp_path, draw=0.0, config="", **tx):
    zone = tmp_path / "z.zone"
    zone.write_text(ZONE)
    rt = build_runtime(parse('[policy]\nauthserv_id = "mx.test"\n' + config), zones=[str(zone)],
                       rand=lambda: draw)
    t = make_tx(**tx)
    return t, rt.pipeline.run(t)


def test_a_pass_records_every_field(tmp_path):
    tx, outcome = outcome_of(tmp_path, headers="From: a@sender.example\nSubject: x",
                             mail_from="<b@sender.example>", rcpts=("<x@rcpt.example>", "<y@other.example>"))
    row = row_from(tx, outcome, WHEN)
    assert row is not None
    assert (row.time, row.policy_domain, row.from_domain, row.source_ip) == (
        WHEN, "sender.example", "sender.example", "192.0.2.1")
    assert (row.envelope_from, row.envelope_to) == ("sender.example", "rcpt.example")
    assert (row.spf_result, row.spf_domain, row.spf_scope) == ("pass", "sender.example", "mfrom")
    assert row.dkim == ()
    assert (row.dmarc_result, row.dkim_aligned, row.spf_aligned) == ("pass", "fail", "pass")
    assert (row.p, row.sp, row.np, row.pct, row.adkim, row.aspf, row.fo, row.ri) == (
        "reject", "quarantine", "", 50, "s", "r", "1:d", 3600)
    assert row.rua == "mailto:a@sender.example,mailto:b@sender.example"
    assert row.ruf == "mailto:f@sender.example"
    assert (row.disposition, row.override) == ("none", "")


def test_sampled_out_and_report_mode_are_overrides(tmp_path):
    bad = {"headers": "From: a@sender.example", "mail_from": "<b@sender.example>", "ip": "198.51.100.9"}
    tx, outcome = outcome_of(tmp_path, draw=0.99, **bad)  # pct=50: not sampled, one step weaker
    row = row_from(tx, outcome, WHEN)
    assert (row.dmarc_result, row.disposition, row.override) == ("fail", "quarantine", "sampled_out")
    tx, outcome = outcome_of(tmp_path, draw=0.0, **bad)
    assert row_from(tx, outcome, WHEN).disposition == "reject"
    tx, outcome = outcome_of(tmp_path, config='[dmarc]\nmode = "report"\n', **bad)
    row = row_from(tx, outcome, WHEN)
    assert (row.disposition, row.override) == ("none", "report_only")


def test_null_sender_records_the_helo_scope(tmp_path):
    tx, outcome = outcome_of(tmp_path, headers="From: a@sender.example", mail_from="<>",
                             helo="sender.example")
    row = row_from(tx, outcome, WHEN)
    assert (row.envelope_from, row.spf_scope, row.spf_domain) == ("", "helo", "sender.example")


@pytest.mark.parametrize("case", ["outbound", "no_policy", "tempfail", "no_ip"])
def test_nothing_recorded(tmp_path, case):
    kw = {"headers": "From: a@sender.example", "mail_from": "<b@sender.example>"}
    if case == "outbound":
        kw["direction"] = Direction.OUTBOUND
    if case == "no_policy":
        kw["headers"] = "From: a@nodmarc.example"
    if case == "no_ip":
        kw["ip"] = ""
    tx, outcome = outcome_of(tmp_path, **kw)
    if case == "tempfail":
        outcome.verdict = Verdict.tempfail("later")
    assert row_from(tx, outcome, WHEN) is None


def test_received_time_is_the_mta_headers_date():
    tx = make_tx()
    tx.message.mta_header = Header("Received", " from x by mx.test; Sun, 22 Nov 2026 00:00:00 +0000")
    assert received_time(tx.message) == WHEN
    tx.message.mta_header = Header("Received", " from x by mx.test; not a date")
    assert received_time(tx.message) > WHEN - 10**9  # now


@pytest.mark.parametrize("text,key", [
    ('store = "mysql://x"', "reports.store"), ('relay = "localhost"', "reports.relay"),
    ('from = "nobody"', "reports.from"), ("keep_days = 0", "reports.keep_days"),
    ('failure_include = "body"', "reports.failure_include"), ("queue_size = 0", "reports.queue_size"),
    ('store = ""\nfailure_reports = true', "reports.failure_reports"),
])
def test_config_errors_name_the_key(text, key):
    with pytest.raises(ConfigError) as err:
        parse(f"[reports]\n{text}\n")
    assert any(key in p for p in err.value.problems)
