"""The SQLite store (schema, claims, pruning) and the recorder (queue, batches, drops)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from reportsupport import DAY0, row

from mailwarden.reports.recorder import Recorder, counters
from mailwarden.reports.store import MIGRATIONS, StoreError, open_store


def test_rows_round_trip_and_schema_version(tmp_path):
    url = f"sqlite:///{tmp_path}/sub/r.db"
    store = open_store(url)
    rows = [row(), row(dkim=(("a.example", "s", "fail"), ("b.example", "", "pass")), time=DAY0 + 7)]
    store.insert(rows, "host1")
    assert store.rows("sender.example", DAY0, DAY0 + 86400) == sorted(rows, key=lambda r: r.time)
    assert store.rows("sender.example", DAY0 + 86400, DAY0 + 2 * 86400) == []
    assert store.domains() == ["sender.example"]
    store.close()
    conn = sqlite3.connect(tmp_path / "sub" / "r.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM mailwarden_schema").fetchall() == [(len(MIGRATIONS),)]
    open_store(url).close()  # opening again migrates nothing and keeps the rows
    assert conn.execute("SELECT count(*) FROM dmarc_rows").fetchone()[0] == 2


def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path):
    import multiprocessing

    for attempt in range(10):  # a race: several tries to catch it
        url = f"sqlite:///{tmp_path}/new{attempt}.db"
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(6) as pool:
            assert pool.map(_open_and_count, [url] * 6) == [0] * 6
        conn = sqlite3.connect(tmp_path / f"new{attempt}.db")
        assert conn.execute("SELECT count(*) FROM mailwarden_schema").fetchone()[0] == 1


def _open_and_count(url: str) -> int:
    store = open_store(url)
    return len(store.rows("x", 0, 1))


def test_buckets_and_latest_interval(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    store.insert([row(time=DAY0 + 10, ri=86400), row(time=DAY0 + 3 * 3600 + 5, ri=3600),
                  row(time=DAY0 + 86400 + 1, ri=3600)], "h")
    assert store.latest_interval("sender.example") == 3600
    assert store.buckets("sender.example", 3600) == [DAY0, DAY0 + 3 * 3600, DAY0 + 86400]
    assert store.buckets("sender.example", 86400) == [DAY0, DAY0 + 86400]
    assert store.latest_interval("nobody.example") == 86400


def test_a_report_is_claimed_once_and_released_on_failure(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    a, b = open_store(url), open_store(url)
    assert a.claim("d.example", DAY0, DAY0 + 86400, "id", "a", now=DAY0 + 90000)
    assert not b.claim("d.example", DAY0, DAY0 + 86400, "id", "b", now=DAY0 + 90000)
    a.release("d.example", DAY0)
    assert b.claim("d.example", DAY0, DAY0 + 86400, "id", "b", now=DAY0 + 90001)
    b.mark_sent("d.example", DAY0, DAY0 + 90002)
    assert a.sent("d.example", DAY0)
    a.release("d.example", DAY0)  # a sent report is never released
    assert not a.claim("d.example", DAY0, DAY0 + 86400, "id", "a", now=DAY0 + 10 * 86400)


def test_a_claim_of_a_host_that_died_expires_after_an_hour(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    assert store.claim("d.example", DAY0, DAY0 + 86400, "id", "dead", now=DAY0 + 90000)
    assert not store.claim("d.example", DAY0, DAY0 + 86400, "id", "b", now=DAY0 + 90000 + 3599)
    assert store.claim("d.example", DAY0, DAY0 + 86400, "id", "b", now=DAY0 + 90000 + 3601)


def test_prune(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    store.insert([row(time=DAY0), row(time=DAY0 + 2 * 86400)], "h")
    store.claim("sender.example", DAY0, DAY0 + 86400, "id", "h", now=DAY0)
    assert store.prune(DAY0 + 86401) == 1
    assert [r.time for r in store.rows("sender.example", 0, 2 * DAY0)] == [DAY0 + 2 * 86400]
    assert not store.sent("sender.example", DAY0)


def test_unusable_store_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    for url in (f"sqlite:///{tmp_path}/file/r.db", "mysql://x", "sqlite://"):
        try:
            open_store(url)
        except StoreError as exc:
            assert "\n" not in str(exc)
        else:
            raise AssertionError(url)


def test_recorder_writes_in_batches_from_its_thread(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    rec = Recorder(url, queue_size=5000, block=True)
    for i in range(1200):
        rec.record(row(time=DAY0 + i))
    rec.close()
    assert rec.counters()["reports_rows_written"] == 1200 and rec.dropped == 0
    assert len(open_store(url).rows("sender.example", 0, 2 * DAY0)) == 1200


def test_store_down_drops_and_counts_never_raises(tmp_path, caplog):
    (tmp_path / "file").write_text("x")
    rec = Recorder(f"sqlite:///{tmp_path}/file/r.db", queue_size=100)
    for i in range(10):
        rec.record(row(time=DAY0 + i))
    rec.close()
    assert rec.dropped == 10 and rec.written == 0
    assert counters()["reports_rows_dropped"] >= 10  # what metrics read, per process
    assert sum("DMARC report rows dropped" in r.message for r in caplog.records) == 1  # rate-limited


def test_full_queue_drops_at_once_instead_of_waiting(tmp_path):
    entered, gate = threading.Event(), threading.Event()

    def slow_open(url):
        entered.set()
        gate.wait(10)
        return open_store(url)

    rec = Recorder(f"sqlite:///{tmp_path}/r.db", queue_size=3, opener=slow_open)
    rec.record(row(time=DAY0))
    assert entered.wait(10)  # the writer holds that row and waits for the store
    for i in range(20):
        rec.record(row(time=DAY0 + 1 + i))  # 3 fit in the queue, the rest are dropped
    assert rec.dropped == 17
    gate.set()
    rec.close()
    assert rec.written == 4


def test_counting_in_the_database_equals_counting_in_memory(tmp_path):
    """Differential: Store.grouped (SQL GROUP BY) against aggregate.group over the same random rows."""
    import random

    from test_aggregate import META, _random_row

    from mailwarden.reports.aggregate import GROUP_KEY, group
    from mailwarden.reports.schedule import build_from_store

    for seed in range(5):
        rnd = random.Random(seed)
        # distinct times: the latest row, whose policy the report shows, is then one row
        rows = [_random_row(rnd, i)._replace(time=DAY0 + 7 * i) for i in range(rnd.randrange(1, 300))]
        rnd.shuffle(rows)
        store = open_store(f"sqlite:///{tmp_path}/g{seed}.db")
        store.insert(rows, "h")
        grouped = store.grouped("sender.example", DAY0, DAY0 + 86400, GROUP_KEY)
        assert dict(group([r for r, _ in grouped], [n for _, n in grouped])) == dict(group(rows))
        report = build_from_store(store, META, "sender.example", DAY0, DAY0 + 86400)
        assert report is not None and report.count == len(rows)
        latest = max(rows, key=lambda r: r.time)
        assert f"<p>{latest.p}</p>" in report.xml.decode()


@pytest.mark.root
def test_workers_that_drop_privileges_can_record(mailwarden_factory):
    """serve starts as root and its workers drop to [milter] user: the store is created and
    given to that user first, so the workers can write it (and SQLite's WAL files beside it)."""
    import os
    import pwd
    import shutil
    import tempfile
    import time
    from pathlib import Path

    from tests.support.milterclient import MilterClient

    if os.geteuid() != 0:
        pytest.skip("needs root, to drop to another user")
    try:
        user = pwd.getpwnam("mailwarden")
    except KeyError:
        pytest.skip("no user mailwarden (make run creates it)")
    base = Path(tempfile.mkdtemp(prefix="mw-store-"))
    base.chmod(0o755)
    try:
        url = f"sqlite:///{base}/new/reports.db"
        zone = '$TTL 300\nsender.example. IN TXT "v=spf1 ip4:192.0.2.1 -all"\n' \
               '_dmarc.sender.example. IN TXT "v=DMARC1; p=none; rua=mailto:d@sender.example"\n'
        proc = mailwarden_factory(f'[reports]\nstore = "{url}"\n', zone_text=zone, user="mailwarden")
        raw = b"From: a@sender.example\r\nTo: b@rcpt.test\r\nSubject: x\r\n\r\nhi\r\n"
        with MilterClient.connect(proc.spec) as mc:
            assert mc.send_message(raw, "<b@sender.example>", ("<b@rcpt.test>",),
                                   connect={"addr": "192.0.2.1"}).verdict == "accept"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not open_store(url).rows("sender.example", 0, 2**40):
            time.sleep(0.1)
        assert len(open_store(url).rows("sender.example", 0, 2**40)) == 1, proc.log()
        assert (base / "new").stat().st_uid == user.pw_uid
    finally:
        shutil.rmtree(base, ignore_errors=True)
