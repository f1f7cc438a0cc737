"""`reports send`: due reports by SMTP to a local sink, once; external destinations verified;
!size limits; failed sends retried; the CLI; dry-run --record-reports as the source."""

from __future__ import annotations

import email
import email.policy
import gzip
from pathlib import Path

import pytest
from reportsupport import DAY0, parsed, row, schema
from tests.support.postfix import SmtpSink, free_port

from mailwarden.cli import main
from mailwarden.config.reports import ReportsSection
from mailwarden.dmarc import psl
from mailwarden.errors import DnsTempError
from mailwarden.reports.deliver import Destination, Sender, authorized, destinations, parse_uri
from mailwarden.reports.schedule import send_due
from mailwarden.reports.store import open_store
from mailwarden.resolver.static import StaticZone

ZONE = """\
$ORIGIN test.
$TTL 300
ext.example._report._dmarc.collector IN TXT "v=DMARC1"
other.example._report._dmarc.collector IN TXT "v=spf1 -all"
;! TIMEOUT temp.example._report._dmarc.slow.test.
"""
NOW = DAY0 + 2 * 86400 + 600
LST = psl.load()


def org(domain: str) -> str:
    return psl.org_domain(domain, LST)


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.stop()


@pytest.mark.parametrize("uri,expected", [
    ("mailto:a@x.example", Destination("mailto:a@x.example", "a@x.example", 0)),
    ("mailto:a@x.example!10", Destination("mailto:a@x.example!10", "a@x.example", 10)),
    ("mailto:a@x.example!10k", Destination("mailto:a@x.example!10k", "a@x.example", 10240)),
    ("MAILTO:a%40b@x.example!2M", None),  # two @ once decoded
    ("mailto:r%2Bd@x.example!1g", Destination("mailto:r%2Bd@x.example!1g", "r+d@x.example", 1 << 30)),
    ("mailto:a@x.example?subject=x", Destination("mailto:a@x.example?subject=x", "a@x.example", 0)),
    ("https://x.example/r", None),
    ("mailto:nobody", None),
])
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected


def test_destinations_notes_what_it_skips():
    dests, notes = destinations("mailto:a@x.example, https://x.example/r,,mailto:b@y.example!5k")
    assert [d.address for d in dests] == ["a@x.example", "b@y.example"] and len(notes) == 1


def test_external_destination_verification():
    zone = StaticZone.from_text(ZONE)
    same = parse_uri("mailto:d@reports.sender.example")
    assert authorized(zone, "mail.sender.example", same, org)  # same organizational domain
    ext = parse_uri("mailto:rua@collector.test")
    assert authorized(zone, "ext.example", ext, org)
    assert not authorized(zone, "other.example", ext, org)  # a TXT record, but not v=DMARC1
    assert not authorized(zone, "nobody.example", ext, org)
    with pytest.raises(DnsTempError):
        authorized(zone, "temp.example", parse_uri("mailto:x@slow.test"), org)


def _store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    store.insert([
        *[row(time=DAY0 + i) for i in range(5)],
        row(time=DAY0 + 86400 + 5),  # the next day: a second report
        *[row(policy_domain="ext.example", from_domain="ext.example", rua="mailto:rua@collector.test",
              time=DAY0 + i, source_ip="198.51.100.1") for i in range(3)],
        row(policy_domain="other.example", rua="mailto:rua@collector.test"),
        row(policy_domain="big.example", rua="mailto:x@big.example!100, mailto:y@big.example"),
        row(policy_domain="temp.example", rua="mailto:x@slow.test"),
        row(policy_domain="norua.example", rua=""),
        row(policy_domain="late.example", time=NOW - 100, ri=3600),  # interval not over yet
    ], "h")
    return store


def test_send_due_once_verified_and_size_limited(tmp_path, sink):
    store = _store(tmp_path)
    sender = Sender("dmarc-noreply@rcv.example", f"127.0.0.1:{sink.port}")
    section = ReportsSection(receiver="rcv.example", org_name="Receiver Org")
    zone = StaticZone.from_text(ZONE)
    result = send_due(store, section, sender, zone, org, NOW, "h")
    assert result.failed == 0
    got = {d.rcpts[0].strip("<>"): d for d in sink.deliveries}
    assert sorted(got) == ["dmarc@sender.example", "rua@collector.test", "x@big.example", "y@big.example"]
    assert len(sink.deliveries) == 5  # sender.example: two days, two reports
    by_day = {}
    for d in sink.deliveries:
        if d.rcpts == ["<dmarc@sender.example>"] or d.rcpts == ["dmarc@sender.example"]:
            report = _attachment(d.data)
            theirs = parsed(report)
            schema().validate(gzip.decompress(report))
            by_day[theirs["report_metadata"]["begin_date"]] = sum(r["count"] for r in theirs["records"])
    assert sorted(by_day.values()) == [1, 5]
    ext = parsed(_attachment(got["rua@collector.test"].data))
    assert sum(r["count"] for r in ext["records"]) == 3
    notice = email.message_from_bytes(got["x@big.example"].data, policy=email.policy.default)
    assert not notice.is_multipart() and "over the limit of 100 bytes" in notice.get_content()
    assert notice["Subject"].startswith("Report Domain: big.example Submitter: rcv.example Report-ID: <")
    assert _attachment(got["y@big.example"].data)  # the destination without a limit gets it
    assert any("other.example" in n and "does not accept" in n for n in result.notes)
    assert any("temp.example" in n and "cannot verify" in n for n in result.notes)
    assert not store.sent("temp.example", DAY0)  # tried again at the next run
    assert store.sent("other.example", DAY0) and store.sent("norua.example", DAY0)  # skipped for good
    # Nothing is sent twice.
    sink.clear()
    again = send_due(store, section, sender, zone, org, NOW + 3600, "h")
    assert sink.deliveries == [] and again.sent == []


def _attachment(data: bytes) -> bytes:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = [p for p in msg.iter_attachments()]
    assert len(parts) == 1 and parts[0].get_content_type() == "application/gzip"
    name = parts[0].get_filename()
    assert name.startswith("rcv.example!") and name.endswith(".xml.gz")
    return parts[0].get_content()


def test_failed_send_is_retried_at_the_next_run(tmp_path, sink):
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    store.insert([row()], "h")
    section = ReportsSection(receiver="rcv.example")
    down = Sender("dmarc-noreply@rcv.example", f"127.0.0.1:{free_port()}")
    zone = StaticZone.from_text(ZONE)
    result = send_due(store, section, down, zone, org, NOW, "h")
    assert result.failed == 1 and not store.sent("sender.example", DAY0)
    up = Sender("dmarc-noreply@rcv.example", f"127.0.0.1:{sink.port}")
    assert len(send_due(store, section, up, zone, org, NOW, "h").sent) == 1
    assert store.sent("sender.example", DAY0) and len(sink.deliveries) == 1


def test_dry_run_backfill_then_build_and_send_cli(tmp_path, sink, capsys):
    """dry-run --record-reports over the DMARC corpus (dated by its Received headers), then the
    `reports build` and `reports send` commands."""
    data = Path(__file__).resolve().parents[1] / "data" / "dmarc"
    url = f"sqlite:///{tmp_path}/r.db"
    zones = ["--zone", str(data / "policies.zone"), "--zone", str(data / "spf.zone")]
    assert main(["dry-run", *zones, "--record-reports", url, str(data / "corpus")]) == 0
    err = capsys.readouterr().err
    assert "6 report rows recorded, 0 dropped" in err
    rows = open_store(url).rows("reject.example", 0, 2**40)
    assert rows and all(r.time == 1795320000 for r in rows)  # the corpus's Received date
    assert main(["reports", "build", "--store", url, "--out", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(f.split("!")[1] for f in files) == ["none.example", "quar.example", "reject.example"]
    config = tmp_path / "m.toml"
    config.write_text(f'[reports]\nstore = "{url}"\nrelay = "127.0.0.1:{sink.port}"\n'
                      'from = "dmarc@rcv.example"\norg_name = "Receiver Org"\n')
    later = str(1795320000 + 2 * 86400)
    assert main(["reports", "send", "--config", str(config), *zones, "--now", later]) == 0
    out = capsys.readouterr().out
    assert "reject.example" in out and sink.deliveries  # reject.example has rua=
    assert all(d.rcpts[0].strip("<>") == "agg@reject.example" for d in sink.deliveries)
    theirs = parsed(_attachment_any(sink.deliveries[0].data))
    assert sum(r["count"] for r in theirs["records"]) == len(rows)


def _attachment_any(data: bytes) -> bytes:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return next(iter(msg.iter_attachments())).get_content()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["reports", "build", "--store", "mysql://x", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailwarden: ") and err.count("\n") == 1
    assert main(["reports", "send", "--store", ""]) == 2


def test_the_shipped_timer_runs_a_valid_command():
    from mailwarden.cli import build_parser

    root = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
    service = (root / "mailwarden-reports.service").read_text()
    line = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    argv = line.partition("=")[2].split()[1:]
    args = build_parser().parse_args(argv)
    assert args.func.__name__ == "cmd_send" and args.config == "/etc/mailwarden/mailwarden.toml"


def test_build_writes_the_intervals_between_begin_and_end(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/r.db"
    store = open_store(url)
    store.insert([row(time=DAY0 + 10), row(time=DAY0 + 86400 + 10), row(time=DAY0 + 2 * 86400 + 10)], "h")
    out = tmp_path / "out"
    assert main(["reports", "build", "--store", url, "--out", str(out),
                 "--begin", "2026-11-23", "--end", "2026-11-23T12:00:00"]) == 0
    names = [p.name for p in out.iterdir()]
    assert len(names) == 1 and f"!{DAY0 + 86400}!{DAY0 + 2 * 86400 - 1}!" in names[0]
    with pytest.raises(SystemExit) as exit_:  # argparse: usage error, status 2
        main(["reports", "build", "--store", url, "--out", str(out), "--begin", "yesterday"])
    assert exit_.value.code == 2
