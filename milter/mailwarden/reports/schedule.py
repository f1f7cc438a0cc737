"""Which reports are due, building them from the store, and sending each exactly once."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailwarden.config.reports import ReportsSection
from mailwarden.core.ports import Resolver
from mailwarden.reports.aggregate import DAY, GROUP_KEY, Metadata, Report, build, interval_length
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


def intervals(store: Store, begin: int, end: int) -> Iterator[tuple[str, int, int]]:
    """(policy domain, start, end) of every interval with rows that overlaps [begin, end)."""
    for domain in store.domains():
        length = interval_length(store.latest_interval(domain))
        for start in store.buckets(domain, length):
            if start + length > begin and start < end:
                yield domain, start, start + length


def reports(store: Store, meta: Metadata, begin: int, end: int) -> Iterator[Report]:
    """Every report with rows in [begin, end): one per policy domain and interval."""
    for domain, start, stop in intervals(store, begin, end):
        report = build_from_store(store, meta, domain, start, stop)
        if report is not None:
            yield report


def build_from_store(store: Store, meta: Metadata, domain: str, begin: int, end: int) -> Report | None:
    """The report of one interval, counted in the database: a busy domain's millions of rows
    never sit in memory, only one per distinct group."""
    latest = store.latest(domain, begin, end)
    if latest is None:
        return None
    grouped = store.grouped(domain, begin, end, GROUP_KEY)
    return build([r for r, _ in grouped], domain, begin, end, meta, counts=[n for _, n in grouped],
                 published=latest)


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)  # one line per report mailed
    notes: list[str] = field(default_factory=list)
    failed: int = 0


def send_due(store: Store, section: ReportsSection, sender: Sender, resolver: Resolver,
             org_of: Callable[[str], str], now: int, host: str) -> SendResult:
    """Prune rows past keep_days, then send every report due and not yet sent (by any host).

    An interval with no destination we may use (no mailto: rua=, or external ones that do not
    accept the domain's reports) is marked "skipped" and not looked at again; one whose external
    destination could not be verified now waits for the next run."""
    meta, _ = metadata(section)
    out = SendResult()
    store.prune(now - section.keep_days * DAY)
    marked: dict[str, set[int]] = {}
    for domain, begin, end in intervals(store, 0, now):
        if domain not in marked:
            marked[domain] = store.marked(domain)  # one query per domain, not per interval
        if end > now - DELAY or begin in marked[domain]:
            continue
        report = build_from_store(store, meta, domain, begin, end)
        latest = store.latest(domain, begin, end)
        if report is None or latest is None:
            continue
        dests, notes = destinations(latest.rua)
        dests, more, unsure = checked(resolver, domain, dests, org_of)
        out.notes += [f"{domain}: {n}" for n in notes + more]
        if not dests and unsure:
            continue
        if not store.claim(domain, begin, end, report.report_id, host, now):
            continue  # another host has it
        if not dests:
            store.mark_sent(domain, begin, now, state="skipped")
            continue
        lines, errors, retry = _deliver(report, meta, sender, dests)
        out.sent += lines
        out.notes += [f"{domain}: cannot send {report.filename(meta.receiver)}: {e}" for e in errors]
        if retry:
            store.release(domain, begin)
            out.failed += 1
        else:
            store.mark_sent(domain, begin, now)
    return out


def _deliver(report: Report, meta: Metadata, sender: Sender,
             dests: list[Destination]) -> tuple[list[str], list[str], bool]:
    """Mail the report to each destination: (lines sent, errors, whether to try again later).

    Only when no destination took it and some failure was temporary is it tried again: once one
    destination has it, a retry would send it to that one twice."""
    name = report.filename(meta.receiver)
    subject = report.subject(meta.receiver)
    data = report.gzipped()
    lines, errors, temporary = [], [], False
    for dest in dests:
        if dest.limit and len(data) > dest.limit:
            text = (f"The DMARC aggregate report {name} for {report.domain} is {len(data)} bytes, over "
                    f"the limit of {dest.limit} bytes in {dest.uri}, and was not sent.\r\n")
            message = sender.message(dest.address, subject, text)
            done = f"{name} -> {dest.address}: too large ({len(data)} > {dest.limit}), notice sent"
        else:
            text = (f"This is an aggregate DMARC report (RFC 7489) from {meta.org_name} for "
                    f"{report.domain}:\r\n{report.count} messages from {_utc(report.begin)} to "
                    f"{_utc(report.end)}.\r\n")
            message = sender.message(dest.address, subject, text, (name, "application/gzip", data))
            done = f"{name} -> {dest.address}: {report.count} messages"
        try:
            sender.send(dest.address, message)
        except (OSError, smtplib.SMTPException) as exc:
            errors.append(f"{dest.address}: {exc}")
            temporary = temporary or not _permanent(exc)
            continue
        lines.append(done)
    return lines, errors, temporary and not lines


def _permanent(exc: Exception) -> bool:
    """A 5xx from the relay: trying again would get the same answer."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(str(code).startswith("5") for code, _ in exc.recipients.values())
    code = getattr(exc, "smtp_code", 0)
    return isinstance(code, int) and 500 <= code < 600


def _utc(when: int) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
