"""A generated corpus for the OpenDMARC cross-check: From domains of every policy shape in
policies.zone, crossed with DKIM and SPF results handed over in a trusted A-R header."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from mailwarden.core.auth import DkimResult, DkimStatus

FROM_DOMAINS = (
    "reject.example", "news.reject.example", "quar.example", "none.example", "strict.example",
    "org.example", "exists.org.example", "sub.nosp.example", "example.co.uk", "mail.example.co.uk",
    "nodmarc.example", "multi.example", "bad.example", "badrua.example", "badsp.example",
    "lenient.example", "notdmarc.example", "notfirst.example", "split.example", "someone.github.io",
    "example.net", "news.example.net", "ghost.example.net", "lists.example.org",
)
# (label, result, d= as a function of the From domain)
DKIM = (
    ("none", "", None),
    ("pass-same", "pass", lambda d: d),
    ("pass-parent", "pass", lambda d: d.split(".", 1)[1]),
    ("pass-child", "pass", lambda d: "mail." + d),
    ("fail-same", "fail", lambda d: d),
    ("pass-other", "pass", lambda d: "other.example"),
)
SPF = (
    ("none", "", None),
    ("pass-same", "pass", lambda d: d),
    ("pass-child", "pass", lambda d: "bounce." + d),
    ("fail-same", "fail", lambda d: d),
    ("softfail-same", "softfail", lambda d: d),
    ("pass-other", "pass", lambda d: "other.example"),
)


@dataclass(frozen=True)
class Case:
    name: str
    from_domain: str
    dkim: tuple[DkimResult, ...]
    spf_result: str
    spf_domain: str

    def ar_value(self) -> str:
        """The trusted upstream A-R carrying the inputs (smtp.mailfrom as a bare domain: OpenDMARC
        1.4.2 reads nothing from a full address there)."""
        parts = [f"dkim={d.result} header.d={d.domain}" for d in self.dkim]
        if self.spf_result:
            parts.append(f"spf={self.spf_result} smtp.mailfrom={self.spf_domain}")
        return "upstream.test; " + ("; ".join(parts) if parts else "none")

    def mail_from(self) -> str:
        return f"<bounce@{self.spf_domain or self.from_domain}>"

    def raw(self) -> bytes:
        return (f"Authentication-Results: {self.ar_value()}\r\n"
                f"From: Sender <user@{self.from_domain}>\r\nTo: b@rcpt.test\r\n"
                f"Subject: {self.name}\r\nMessage-ID: <{self.name}@corpus.test>\r\n"
                "Date: Sun, 22 Nov 2026 04:00:00 +0000\r\n\r\nbody\r\n").encode()


def cases() -> list[Case]:
    out = []
    for dom, (dl, dr, df), (sl, sr, sf) in itertools.product(FROM_DOMAINS, DKIM, SPF):
        dkim = (DkimResult(DkimStatus(dr), df(dom), "sel", "rsa-sha256"),) if df else ()
        out.append(Case(f"{dom}.{dl}.{sl}", dom, dkim, sr, sf(dom) if sf else ""))
    return out
