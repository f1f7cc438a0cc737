"""Which reports are due, building them from the store, and sending each exactly once."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mailwarden.config.reports import ReportsSection
from mailwarden.core.ports import Resolver
from mailwarden.reports.aggregate import DAY, Metadata, Report, build, interval_length
from mailwarden.reports.deliver import Destination, Sender, checked, destinations
from mailwarden.reports.store import Store

DELAY = 300
"""Seconds after an interval ends before its report is due: rows still queued on other hosts
reach the store in the meantime."""


def metadata(section: ReportsSection) -> tuple[Metadata, str]:
    """The report metadata and the From address, defaults filled in from the host name."""
    from_address = section.from_address or f"dmarc-noreply@{socket.getfqdn()}"
    domain = from_address.rpartition("@")[2]
    meta = Metadata(section.org_name or domain, section.email or from_address,
                    section.extra_contact_info, section.receiver or domain)
    return meta, from_address


def reports(store: Store, meta: Metadata, begin: int, end: int,
            complete_before: int | None = None) -> Iterator[Report]:
    """Every report with rows in [begin, end): one per policy domain and interval. With
    `complete_before`, only intervals that ended by then."""
    for domain in store.domains():
        length = interval_length(store.latest_interval(domain))
        for start in store.buckets(domain, length):
            if start + length <= begin or start >= end:
                continue
            if complete_before is not None and start + length > complete_before:
                continue
            rows = store.rows(domain, start, start + length)
            if rows:
                yield build(rows, domain, start, start + length, meta)


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)  # one line per report mailed
    notes: list[str] = field(default_factory=list)
    failed: int = 0


def send_due(store: Store, section: ReportsSection, sender: Sender, resolver: Resolver,
             org_of: Callable[[str], str], now: int, host: str) -> SendResult:
    """Send every due report not yet sent (by any host), then prune old rows."""
    meta, _ = metadata(section)
    out = SendResult()
    for report in reports(store, meta, 0, now, complete_before=now - DELAY):
        if store.sent(report.domain, report.begin):
            continue
        rows = store.rows(report.domain, report.begin, report.end)
        dests, notes = destinations(rows[-1].rua)
        dests, more, unsure = checked(resolver, report.domain, dests, org_of)
        out.notes += [f"{report.domain}: {n}" for n in notes + more]
        if not dests and not unsure:
            continue  # no rua=, or none we may use: nothing will ever be sent for this interval
        if not dests or not store.claim(report.domain, report.begin, report.end, report.report_id, host, now):
            continue
        try:
            lines = _deliver(report, meta, sender, dests)
        except (OSError, smtplib.SMTPException) as exc:
            store.release(report.domain, report.begin)
            out.failed += 1
            out.notes.append(f"{report.domain}: cannot send {report.filename(meta.receiver)}: {exc}")
            continue
        store.mark_sent(report.domain, report.begin, now)
        out.sent += lines
    store.prune(now - section.keep_days * DAY)
    return out


def _deliver(report: Report, meta: Metadata, sender: Sender, dests: list[Destination]) -> list[str]:
    name = report.filename(meta.receiver)
    subject = report.subject(meta.receiver)
    data = report.gzipped()
    lines = []
    for dest in dests:
        if dest.limit and len(data) > dest.limit:
            text = (f"The DMARC aggregate report {name} for {report.domain} is {len(data)} bytes, over "
                    f"the limit of {dest.limit} bytes in {dest.uri}, and was not sent.\r\n")
            sender.send(dest.address, sender.message(dest.address, subject, text))
            lines.append(f"{name} -> {dest.address}: too large ({len(data)} > {dest.limit}), notice sent")
            continue
        text = (f"This is an aggregate DMARC report (RFC 7489) from {meta.org_name} for {report.domain}:\r\n"
                f"{report.count} messages from {report.begin} to {report.end - 1} (UTC seconds).\r\n")
        sender.send(dest.address, sender.message(dest.address, subject, text,
                                                 (name, "application/gzip", data)))
        lines.append(f"{name} -> {dest.address}: {report.count} messages")
    return lines
