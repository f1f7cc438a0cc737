"""Helpers for the report tests: rows, the RFC 7489 schema, an independent parser."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mailwarden.reports.row import Row

DATA = Path(__file__).resolve().parents[1] / "data" / "reports"
DAY0 = 1795305600  # 2026-11-22 00:00:00 UTC

BASE = Row(
    time=DAY0 + 3600, policy_domain="sender.example", from_domain="sender.example",
    source_ip="192.0.2.1", envelope_from="sender.example", envelope_to="rcpt.test",
    spf_result="pass", spf_domain="sender.example", spf_scope="mfrom",
    dkim=(("sender.example", "s1", "pass"),), dmarc_result="pass", dkim_aligned="pass",
    spf_aligned="pass", p="reject", sp="reject", np="", pct=100, adkim="r", aspf="r", fo="0",
    rua="mailto:dmarc@sender.example", ruf="", ri=86400, disposition="none",
)


def row(**changes: Any) -> Row:
    return BASE._replace(**changes)


@functools.cache
def schema() -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(DATA / "rfc7489.xsd"))


def parsed(report: bytes) -> dict[str, Any]:
    """parsedmarc's reading of a report (XML, or gzipped XML), offline."""
    import parsedmarc

    return dict(parsedmarc.parse_aggregate_report_file(report, offline=True, always_use_local_files=True))
