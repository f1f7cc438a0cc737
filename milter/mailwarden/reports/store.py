"""The report store: recorded rows and the reports already sent, in SQLite or PostgreSQL.

`[reports] store` names it: sqlite:///PATH (WAL mode, one file) or postgresql://... (psycopg 3),
for several hosts feeding one report stream. Both take the same SQL; the schema is versioned
in the table mailwarden_schema and upgraded on open, one migration after another.

Exactly one report per policy domain and interval, whatever the number of hosts: a report is
claimed by inserting its key (policy domain, begin) into dmarc_reports, which only one host can
do; the claim becomes "sent" after the mail went out, or is removed when sending failed, so the
next run tries again. A claim left by a host that died while sending expires after an hour.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mailwarden.config.reports import ReportsSection
from mailwarden.errors import MailwardenError
from mailwarden.reports.row import Row

LOG = logging.getLogger("mailwarden.reports")
OUR_DIR = Path(ReportsSection().store[len("sqlite://"):]).parent  # the default store's directory
COLUMNS = Row._fields
CLAIM_EXPIRES = 3600

_ROW_TYPES = {"time": "BIGINT NOT NULL", "pct": "INTEGER", "ri": "INTEGER"}
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE dmarc_rows (" + ", ".join(
            f"{c} {_ROW_TYPES.get(c, 'TEXT NOT NULL')}" for c in COLUMNS) + ", host TEXT NOT NULL)",
        "CREATE INDEX dmarc_rows_domain_time ON dmarc_rows (policy_domain, time)",
        "CREATE INDEX dmarc_rows_time ON dmarc_rows (time)",
        "CREATE TABLE dmarc_reports (policy_domain TEXT NOT NULL, begin_time BIGINT NOT NULL,"
        " end_time BIGINT NOT NULL, report_id TEXT NOT NULL, state TEXT NOT NULL,"
        " host TEXT NOT NULL, updated BIGINT NOT NULL, PRIMARY KEY (policy_domain, begin_time))",
    ),
    (  # 2: failure reports sent per policy domain and hour, for [reports] failure_rate
        "CREATE TABLE dmarc_failures (policy_domain TEXT NOT NULL, hour BIGINT NOT NULL,"
        " sent INTEGER NOT NULL, PRIMARY KEY (policy_domain, hour))",
    ),
)


class StoreError(MailwardenError):
    """The store cannot be opened or used."""


class Store:
    """One connection; used by one thread at a time."""

    placeholder = "?"

    def __init__(self, conn: Any, url: str) -> None:
        self.conn = conn
        self.url = url

    # -- recording ---------------------------------------------------------------------------

    def insert(self, rows: Sequence[Row], host: str) -> None:
        values = [(*_encode(row), host) for row in rows]
        marks = ", ".join([self.placeholder] * (len(COLUMNS) + 1))
        self._many(f"INSERT INTO dmarc_rows ({', '.join(COLUMNS)}, host) VALUES ({marks})", values)

    # -- reading -----------------------------------------------------------------------------

    def domains(self) -> list[str]:
        return [r[0] for r in self._all("SELECT DISTINCT policy_domain FROM dmarc_rows ORDER BY 1")]

    def latest_interval(self, domain: str) -> int:
        """ri= of the domain's most recent row (86400 when it has none)."""
        found = self._all("SELECT ri FROM dmarc_rows WHERE policy_domain = ? ORDER BY time DESC LIMIT 1",
                          (domain,))
        return int(found[0][0]) if found else 86400

    def buckets(self, domain: str, length: int) -> list[int]:
        """The starts of the `length`-second intervals (from the epoch) that hold rows."""
        rows = self._all("SELECT DISTINCT time / ? FROM dmarc_rows WHERE policy_domain = ? ORDER BY 1",
                         (length, domain))
        return [int(r[0]) * length for r in rows]

    def rows(self, domain: str, begin: int, end: int) -> list[Row]:
        """The domain's rows with begin <= time < end, oldest first."""
        found = self._all(f"SELECT {', '.join(COLUMNS)} FROM dmarc_rows WHERE policy_domain = ?"
                          " AND time >= ? AND time < ? ORDER BY time", (domain, begin, end))
        return [_decode(r) for r in found]

    def grouped(self, domain: str, begin: int, end: int, key: Sequence[str]) -> list[tuple[Row, int]]:
        """The domain's rows in [begin, end) counted by the `key` fields, in the database: one
        Row per distinct key (its other fields are the group's largest values) and its count."""
        others = [c for c in COLUMNS if c not in key]
        keys = ", ".join(key)
        found = self._all(f"SELECT {keys}, {', '.join(f'MAX({c})' for c in others)}, COUNT(*) FROM dmarc_rows"
                          f" WHERE policy_domain = ? AND time >= ? AND time < ? GROUP BY {keys}"
                          " ORDER BY MIN(time)", (domain, begin, end))
        order = [*key, *others]
        return [(_decode([r[order.index(c)] for c in COLUMNS]), int(r[-1])) for r in found]

    def latest(self, domain: str, begin: int, end: int) -> Row | None:
        """The domain's last row in [begin, end)."""
        found = self._all(f"SELECT {', '.join(COLUMNS)} FROM dmarc_rows WHERE policy_domain = ?"
                          " AND time >= ? AND time < ? ORDER BY time DESC LIMIT 1", (domain, begin, end))
        return _decode(found[0]) if found else None

    # -- sending, once -----------------------------------------------------------------------

    def claim(self, domain: str, begin: int, end: int, report_id: str, host: str, now: int) -> bool:
        """Whether this caller may send the report (domain, begin): no one sent or is sending it."""
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM dmarc_reports WHERE policy_domain = ? AND begin_time = ?"
                                  " AND state = 'claimed' AND updated < ?"),
                        (domain, begin, now - CLAIM_EXPIRES))
            cur.execute(self._sql(
                "INSERT INTO dmarc_reports (policy_domain, begin_time, end_time, report_id, state, host,"
                " updated) VALUES (?, ?, ?, ?, 'claimed', ?, ?) ON CONFLICT DO NOTHING"),
                (domain, begin, end, report_id, host, now))
            return bool(cur.rowcount == 1)

    def mark_sent(self, domain: str, begin: int, now: int, state: str = "sent") -> None:
        """Done with this report: "sent", or "skipped" (no destination it may go to)."""
        self._execute("UPDATE dmarc_reports SET state = ?, updated = ? WHERE policy_domain = ?"
                      " AND begin_time = ?", (state, now, domain, begin))

    def release(self, domain: str, begin: int) -> None:
        """Give a claim up (sending failed): the next run tries again."""
        self._execute("DELETE FROM dmarc_reports WHERE policy_domain = ? AND begin_time = ?"
                      " AND state = 'claimed'", (domain, begin))

    def marked(self, domain: str) -> set[int]:
        """The begin times of the domain's reports sent, skipped or being sent."""
        return {int(r[0]) for r in self._all("SELECT begin_time FROM dmarc_reports WHERE policy_domain = ?",
                                             (domain,))}

    def sent(self, domain: str, begin: int) -> bool:
        return bool(self._all("SELECT 1 FROM dmarc_reports WHERE policy_domain = ? AND begin_time = ?",
                              (domain, begin)))

    def count_failure(self, domain: str, hour: int, limit: int) -> bool:
        """Count one failure report for (domain, hour); whether it is within `limit`."""
        with self._transaction() as cur:
            cur.execute(self._sql(
                "INSERT INTO dmarc_failures (policy_domain, hour, sent) VALUES (?, ?, 1) ON CONFLICT"
                " (policy_domain, hour) DO UPDATE SET sent = dmarc_failures.sent + 1 RETURNING sent"),
                (domain, hour))
            return int(cur.fetchone()[0]) <= limit

    def prune(self, before: int) -> int:
        """Delete rows and report marks older than `before`; the number of rows deleted."""
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM dmarc_rows WHERE time < ?"), (before,))
            count = cur.rowcount
            cur.execute(self._sql("DELETE FROM dmarc_reports WHERE end_time < ?"), (before,))
            cur.execute(self._sql("DELETE FROM dmarc_failures WHERE hour < ?"), (before // 3600,))
        return int(count)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass

    # -- plumbing ----------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _transaction(self) -> Any:
        return _Transaction(self.conn)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._transaction() as cur:
            cur.execute(self._sql(sql), params)

    def _many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        with self._transaction() as cur:
            cur.executemany(self._sql(sql), params)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._transaction() as cur:
            cur.execute(self._sql(sql), params)
            return list(cur.fetchall())

    def migrate(self) -> None:
        with self._transaction() as cur:
            self._lock(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS mailwarden_schema (version INTEGER NOT NULL)")
            cur.execute("SELECT version FROM mailwarden_schema")
            found = cur.fetchall()
            version = int(found[0][0]) if found else 0
            for statements in MIGRATIONS[version:]:
                for sql in statements:
                    cur.execute(sql)
            latest = (len(MIGRATIONS),)
            if not found:
                cur.execute(self._sql("INSERT INTO mailwarden_schema (version) VALUES (?)"), latest)
            elif version < len(MIGRATIONS):
                cur.execute(self._sql("UPDATE mailwarden_schema SET version = ?"), latest)

    def _lock(self, cur: Any) -> None:
        """Serialize migrations of processes or hosts starting at once."""


class _Transaction:
    """A cursor in a transaction: committed at the end of the block, rolled back on error."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> Any:
        self.cur = self.conn.cursor()
        return self.cur

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            if kind is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.cur.close()


class SqliteStore(Store):
    placeholder = "?"

    def _lock(self, cur: Any) -> None:
        # Python's sqlite3 runs DDL outside transactions: take the write lock first, or two workers
        # opening a new file at once would both create the tables.
        cur.execute("BEGIN IMMEDIATE")


class PostgresStore(Store):
    placeholder = "%s"

    def _lock(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(7489)")


def open_store(url: str) -> Store:
    """The store `url` names, its schema up to date; StoreError when it cannot be used."""
    try:
        if url.startswith("sqlite://"):
            store: Store = SqliteStore(_sqlite(url[len("sqlite://"):]), url)
        elif url.startswith(("postgresql://", "postgres://")):
            store = PostgresStore(_postgres(url), url)
        else:
            raise StoreError(f"unknown report store {url!r} (sqlite:///PATH or postgresql://...)")
        store.migrate()
    except StoreError:
        raise
    except Exception as exc:  # sqlite3, psycopg and OS errors alike
        raise StoreError(f"report store {_safe(url)}: {exc}") from None
    return store


def prepare(url: str, user: str) -> None:
    """At `serve` start, as root, before the workers drop to `user`: create a SQLite store and
    its schema, and give `user` the files it writes (and their directory, when made here), so
    that the workers can record. Nothing for PostgreSQL, or when not root. Never raises: a store
    that cannot be prepared is logged, and the workers drop and count their rows."""
    if not url.startswith("sqlite://") or os.geteuid() != 0:
        return
    path = Path(url[len("sqlite://"):])
    # The directory is given away only when it is ours: made here, or the default one.
    ours = not path.parent.exists() or path.parent == OUR_DIR
    try:
        open_store(url).close()
        if user in ("", "root"):
            return
        entry = pwd.getpwnam(user)
        # SQLite creates the -wal and -shm files beside the database: the directory must be
        # writable too.
        for p in [path, Path(f"{path}-wal"), Path(f"{path}-shm")] + ([path.parent] if ours else []):
            if p.exists():
                os.chown(p, entry.pw_uid, entry.pw_gid)
        if not ours and path.parent.stat().st_uid != entry.pw_uid:
            LOG.warning("report store %s: its directory must be writable by %s (SQLite's WAL files)",
                        _safe(url), user)
    except (StoreError, KeyError, OSError) as exc:
        LOG.warning("report store %s not prepared for user %s: %s", _safe(url), user, exc)


def _sqlite(path: str) -> sqlite3.Connection:
    if not path:
        raise StoreError("sqlite:// needs a path: sqlite:///var/lib/mailwarden/reports.db")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level="DEFERRED", check_same_thread=False)
    _wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _wal(conn: sqlite3.Connection, tries: int = 100) -> None:
    """Switch to WAL. Several workers opening a new file at once may find it locked without
    SQLite's busy handler being asked (a journal-mode change takes the lock outright): retry."""
    for attempt in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.02)


def _postgres(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError("a postgresql:// store needs psycopg: "
                         "pip install 'mailwarden[postgresql]'") from None
    # A store that does not answer must not hold the writer (or `reports send`) for long.
    return psycopg.connect(url, connect_timeout=5)


def _safe(url: str) -> str:
    """The URL without a password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{creds.partition(':')[0]}@{host}"


_DKIM = COLUMNS.index("dkim")


def _encode(row: Row) -> list[Any]:
    values = list(row)
    values[_DKIM] = json.dumps(row.dkim)
    return values


def _decode(values: Sequence[Any]) -> Row:
    data = dict(zip(COLUMNS, values, strict=True))
    data["dkim"] = tuple(tuple(sig) for sig in json.loads(data["dkim"]))
    data["time"], data["pct"], data["ri"] = int(data["time"]), int(data["pct"]), int(data["ri"])
    return Row(**data)
