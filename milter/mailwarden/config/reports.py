"""[reports]: recording DMARC evaluations, aggregate (rua) and failure (ruf) reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class ReportsSection:
    store: str = "sqlite:///var/lib/mailwarden/reports.db"
    """Where each inbound DMARC evaluation is recorded: sqlite:///PATH (embedded, one file),
    postgresql://USER@HOST/DB (several mailwarden hosts feeding one report stream; needs psycopg,
    pip install 'mailwarden[postgresql]'), or "" to record nothing. Recording never delays or
    fails mail: rows that cannot be written are dropped and counted."""
    queue_size: int = 10000
    """Rows each worker holds in memory for its writer thread; when full, new rows are dropped."""
    relay: str = "localhost:25"
    """HOST:PORT of the SMTP server `mailwarden reports send` hands reports to."""
    from_address: str = field(default="", metadata={"key": "from"})
    """`from`: the From (and MAIL FROM) of report mail; empty: dmarc-noreply@ the host name. When
    [dkim] signs for its domain, reports are signed with the same keys."""
    org_name: str = ""
    """<org_name> in report metadata; empty: the domain of `from`."""
    email: str = ""
    """<email> in report metadata (where domain owners write to); empty: `from`."""
    extra_contact_info: str = ""
    """<extra_contact_info> in report metadata (a URL or phone number), left out when empty."""
    receiver: str = ""
    """The receiver domain in report file names and Subjects (RFC 7489 section 7.2.1.1); empty:
    the domain of `from`."""
    keep_days: int = 30
    """Recorded rows and the list of sent reports older than this are deleted by `reports send`."""
    failure_reports: bool = False
    """Send failure reports (RFC 6591 AFRF) to ruf= destinations, as fo= asks. Off by default:
    they carry headers (or whole messages) of individual mails."""
    failure_include: Literal["headers", "message"] = "headers"
    """What a failure report carries of the failed message: its headers, or the whole message."""
    failure_rate: int = 10
    """Failure reports per policy domain per hour, at most; the rest are counted, not sent."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.store and not self.store.startswith(("sqlite://", "postgresql://", "postgres://")):
            problems.append(("store", f"must be sqlite:///PATH, postgresql://... or empty: {self.store!r}"))
        if self.queue_size < 1:
            problems.append(("queue_size", "must be positive"))
        host, _, port = self.relay.rpartition(":")
        if not host or not port.isdigit():
            problems.append(("relay", f"must be HOST:PORT, got {self.relay!r}"))
        if self.from_address and "@" not in self.from_address:
            problems.append(("from", f"not an address: {self.from_address!r}"))
        if self.keep_days < 1:
            problems.append(("keep_days", "must be at least 1"))
        if self.failure_reports and not self.store:
            problems.append(("failure_reports", "needs a store: the hourly limit is counted there"))
        if self.failure_rate < 0:
            problems.append(("failure_rate", "must not be negative"))
        return problems
