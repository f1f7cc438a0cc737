"""Failure reports (RFC 7489 section 7.3): RFC 6591 AFRF messages to ruf= destinations.

Off unless `[reports] failure_reports = true`. On the mail path only `failure_case` runs (pure,
cheap: it copies the headers, and the body when the whole message is wanted); the recorder's
background thread then applies the hourly limit per policy domain (counted in the store, so
shared by every worker and host), verifies external destinations and sends by SMTP.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP

from mailwarden import __version__
from mailwarden.config.reports import ReportsSection
from mailwarden.core.decisions import Action, AddHeader, Outcome
from mailwarden.core.model import Transaction
from mailwarden.core.ports import Resolver
from mailwarden.reports.deliver import Sender, checked, destinations
from mailwarden.reports.row import Row

BODY_LIMIT = 1 << 20  # a failure report carries at most this much of a message body


def wanted(row: Row) -> list[str]:
    """The Auth-Failure values the record's fo= asks a report for (RFC 7489 section 6.3); []: none.

    fo=0: no mechanism gave an aligned pass; fo=1: some mechanism did not; fo=d: a DKIM
    signature failed to verify, aligned or not; fo=s: SPF failed, aligned or not."""
    options = row.fo.split(":")
    failures = []
    dmarc_failed = row.dkim_aligned != "pass" and row.spf_aligned != "pass"
    some_failed = row.dkim_aligned != "pass" or row.spf_aligned != "pass"
    if ("0" in options and dmarc_failed) or ("1" in options and some_failed):
        failures.append("dmarc")
    if "d" in options and any(result == "fail" for _, _, result in row.dkim):
        failures.append("signature")
    if "s" in options and row.spf_result == "fail":
        failures.append("spf")
    return failures


@dataclass(frozen=True)
class FailureCase:
    """One message to report on: the row, and what of the message the report carries."""

    row: Row
    failures: tuple[str, ...]
    mail_from: str
    headers: bytes
    body: bytes | None  # None: headers only
    authres: str  # our Authentication-Results value
    delivery: str  # RFC 6591 Delivery-Result


def failure_case(row: Row, tx: Transaction, outcome: Outcome, include: str) -> FailureCase | None:
    failures = wanted(row)
    if not failures or not row.ruf:
        return None
    headers = b"".join(h.raw() + b"\r\n" for h in tx.received_headers)
    body = tx.message.body.read(BODY_LIMIT) if include == "message" else None
    authres = next((e.value.strip() for e in outcome.edits
                    if isinstance(e, AddHeader) and e.name.lower() == "authentication-results"), "")
    delivery = {Action.REJECT: "reject", Action.QUARANTINE: "policy", Action.DISCARD: "other"}.get(
        outcome.verdict.action, "delivered")
    return FailureCase(row, tuple(failures), tx.envelope.sender, headers, body, authres, delivery)


def afrf(case: FailureCase, sender: Sender, to: str) -> bytes:
    """The RFC 6591 report: a text part, the message/feedback-report part, and the headers
    (text/rfc822-headers) or the message (message/rfc822)."""
    row = case.row
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender.from_address
    msg["To"] = to
    msg["Subject"] = f"DMARC failure report for {row.from_domain} from {row.source_ip}"
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain=sender.from_address.rpartition("@")[2])
    msg.set_content(f"A message claiming to be from {row.from_domain} failed DMARC checks "
                    f"({', '.join(case.failures)}) at {email.utils.formatdate(row.time, usegmt=True)}.\r\n")
    fields = [
        ("Feedback-Type", "auth-failure"),
        ("User-Agent", f"mailwarden/{__version__}"),
        ("Version", "1"),
        ("Original-Mail-From", f"<{case.mail_from}>"),
        ("Arrival-Date", email.utils.formatdate(row.time, usegmt=True)),
        ("Source-IP", row.source_ip),
        ("Reported-Domain", row.from_domain),
        ("Delivery-Result", case.delivery),
        *(("Auth-Failure", f) for f in case.failures),
        ("Identity-Alignment", ",".join(n for n, a in (("dkim", row.dkim_aligned), ("spf", row.spf_aligned))
                                        if a == "pass") or "none"),
    ]
    if case.authres:
        fields.append(("Authentication-Results", case.authres))
    for d, s, result in row.dkim:
        if result == "fail" and "signature" in case.failures:
            fields += [("DKIM-Domain", d), ("DKIM-Selector", s)]
            break
    report = "".join(f"{name}: {value}\r\n" for name, value in fields).encode()
    msg.make_mixed()
    msg.attach(_part("message/feedback-report", report))
    if case.body is None:
        msg.attach(_part("text/rfc822-headers", case.headers))
    else:
        msg.attach(_part("message/rfc822", case.headers + b"\r\n" + case.body))
    msg.set_type("multipart/report")
    msg.set_param("report-type", "feedback-report")
    return sender.sign(msg.as_bytes())


def _part(content_type: str, data: bytes) -> EmailMessage:
    """A part carried as it is (7bit, or 8bit when it has to): message/* parts may not be
    base64-encoded (RFC 2046 section 5.2), and a report reader wants the fields as text."""
    part = EmailMessage(policy=SMTP)
    part["Content-Type"] = content_type
    part["Content-Transfer-Encoding"] = "7bit" if data.isascii() else "8bit"
    if content_type == "message/rfc822":  # the generator writes an embedded message as it is
        part.set_payload([email.message_from_bytes(data, policy=SMTP)])
    else:
        part.set_payload(data.decode("utf-8", "surrogateescape"))
    return part


@dataclass
class FailureSender:
    """Sends failure reports from the recorder's thread: limited, verified, by SMTP."""

    section: ReportsSection
    sender: Sender
    resolver: Resolver
    org_of: Callable[[str], str]
    sent: int = 0
    limited: int = 0

    def send(self, case: FailureCase, allowed: Callable[[str, int, int], bool]) -> list[str]:
        """Send `case` to its verified ruf= destinations; notes on what was not sent.
        `allowed(domain, hour, limit)` counts one report against the hourly limit."""
        row = case.row
        if not allowed(row.policy_domain, row.time // 3600, self.section.failure_rate):
            self.limited += 1
            return [f"{row.policy_domain}: failure report over the limit of {self.section.failure_rate}/hour"]
        dests, notes = destinations(row.ruf)
        dests, more, _ = checked(self.resolver, row.policy_domain, dests, self.org_of)
        for dest in dests:
            data = afrf(case, self.sender, dest.address)
            if dest.limit and len(data) > dest.limit:
                notes.append(f"failure report for {row.policy_domain} over {dest.uri}'s size limit")
                continue
            self.sender.send(dest.address, data)
            self.sent += 1
        return notes + more
