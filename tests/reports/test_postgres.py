"""PostgreSQL as the store of several hosts: a private cluster (initdb/pg_ctl as user postgres,
unix socket only) fed by two `mailwarden serve` instances; two `reports send` runs at once send
exactly one report per domain and interval, with the counts of both; with the store down, mail
flows and the dropped rows are counted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgcluster import PgCluster, available
from reportsupport import DAY0, parsed, row
from tests.support.milterclient import MilterClient
from tests.support.postfix import SmtpSink

from mailwarden.reports.store import open_store

pytestmark = [pytest.mark.root, pytest.mark.skipif(bool(available()), reason=available() or "available")]

CLIENT = "203.0.113.25"
ZONE = f"""$TTL 300
good.example.          IN TXT "v=spf1 ip4:{CLIENT} -all"
_dmarc.good.example.   IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@good.example"
reject.example.        IN TXT "v=spf1 -all"
_dmarc.reject.example. IN TXT "v=DMARC1; p=reject; rua=mailto:agg@reject.example"
"""


@pytest.fixture(scope="module")
def cluster():
    c = PgCluster().start()
    yield c
    c.close()


_dbs = iter(range(1000))


@pytest.fixture
def pg_url(cluster):
    return cluster.createdb(f"reports{next(_dbs)}")


def send(spec: str, domain: str) -> str:
    raw = (f"From: a@{domain}\r\nTo: b@rcpt.test\r\nSubject: pg\r\n\r\nhello\r\n").encode()
    with MilterClient.connect(spec) as mc:
        return mc.send_message(raw, f"<b@{domain}>", ("<b@rcpt.test>",), connect={"addr": CLIENT}).verdict


def wait_rows(url: str, domain: str, count: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        store = open_store(url)
        found = len(store.rows(domain, 0, 2**40))
        store.close()
        if found >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_store_contract_on_postgres(pg_url):
    a, b = open_store(pg_url), open_store(pg_url)
    rows = [row(time=DAY0 + i, dkim=(("x.example", "s", "fail"),)) for i in range(3)]
    a.insert(rows, "a")
    assert b.rows("sender.example", DAY0, DAY0 + 86400) == rows
    assert b.buckets("sender.example", 3600) == [DAY0]
    assert a.claim("sender.example", DAY0, DAY0 + 86400, "id", "a", DAY0 + 90000)
    assert not b.claim("sender.example", DAY0, DAY0 + 86400, "id", "b", DAY0 + 90000)
    assert b.prune(DAY0 + 2) == 2
    open_store(pg_url).close()  # the schema is migrated once


def test_two_hosts_one_report_per_domain_with_summed_counts(pg_url, mailwarden_factory, tmp_path: Path):
    config = f'[reports]\nstore = "{pg_url}"\n'
    hosts = [mailwarden_factory(config, zone_text=ZONE), mailwarden_factory(config, zone_text=ZONE)]
    per_host = [{"good.example": 3, "reject.example": 1}, {"good.example": 2, "reject.example": 2}]
    for proc, counts in zip(hosts, per_host, strict=True):
        for domain, n in counts.items():
            for _ in range(n):
                assert send(proc.spec, domain) == ("reject" if domain == "reject.example" else "accept")
    assert wait_rows(pg_url, "good.example", 5) == 5
    assert wait_rows(pg_url, "reject.example", 3) == 3

    sink = SmtpSink()
    try:
        zone = tmp_path / "zone.txt"
        zone.write_text(ZONE)
        cfg = tmp_path / "send.toml"
        cfg.write_text(f'[reports]\nstore = "{pg_url}"\nrelay = "127.0.0.1:{sink.port}"\n'
                       'from = "dmarc@rcv.example"\n')
        later = str(int(time.time()) + 2 * 86400)
        cmd = [sys.executable, "-m", "mailwarden", "reports", "send", "--config", str(cfg),
               "--zone", str(zone), "--now", later]
        runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outputs = [r.communicate(timeout=120) for r in runs]
        assert [r.returncode for r in runs] == [0, 0], outputs
        sink.wait(count=2)
        time.sleep(0.5)  # a duplicate, if there were one, would have arrived by now
        got = {d.rcpts[0].strip("<>"): d for d in sink.deliveries}
        assert len(sink.deliveries) == 2 and sorted(got) == ["agg@reject.example", "dmarc@good.example"]
        for rcpt, count in (("dmarc@good.example", 5), ("agg@reject.example", 3)):
            report = _attachment(got[rcpt].data)
            assert sum(r["count"] for r in parsed(report)["records"]) == count
    finally:
        sink.stop()


def _attachment(data: bytes) -> bytes:
    import email
    import email.policy

    msg = email.message_from_bytes(data, policy=email.policy.default)
    return next(iter(msg.iter_attachments())).get_content()


def test_store_down_mail_flows_and_drops_are_counted(cluster, pg_url, mailwarden_factory):
    proc = mailwarden_factory(f'[reports]\nstore = "{pg_url}"\n[milter]\nworkers = 1\n', zone_text=ZONE)
    assert send(proc.spec, "good.example") == "accept"
    assert wait_rows(pg_url, "good.example", 1) == 1
    cluster.stop()
    try:
        for _ in range(3):
            assert send(proc.spec, "good.example") == "accept"  # never a tempfail for reporting
            assert send(proc.spec, "reject.example") == "reject"  # DMARC still applies
        deadline = time.monotonic() + 20
        while "DMARC report rows dropped" not in proc.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "DMARC report rows dropped" in proc.log()
    finally:
        cluster.start()
    # Back up: rows are recorded again (the writer reopens the store; nothing is replayed).
    deadline = time.monotonic() + 60
    while wait_rows(pg_url, "good.example", 2, timeout=1) < 2 and time.monotonic() < deadline:
        send(proc.spec, "good.example")
    store = open_store(pg_url)
    assert len(store.rows("reject.example", 0, 2**40)) == 0  # the dropped ones stay dropped
    assert len(store.rows("good.example", 0, 2**40)) >= 2
