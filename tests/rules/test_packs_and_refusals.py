"""The shipped packs (privacy, hygiene) and the constructs mailwarden refuses on purpose."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.rules.helpers import names, run, runtime, transaction
from tests.rules.test_postmap_diff import POSTMAP_CMD

from mailwarden.core.decisions import Action
from mailwarden.core.model import Direction
from mailwarden.rules.loader import load_table
from mailwarden.rules.matcher import Matcher

REPO = Path(__file__).resolve().parents[2]
PRIVACY = REPO / "rules/outbound_header_checks/00-privacy.pcre"
ATTACH = REPO / "rules/mime_header_checks/50-dangerous-attachments.pcre"
SUBJECTS = REPO / "rules/header_checks/50-malware-subjects.pcre"
PRIVACY_NAMES = ("Received", "User-Agent", "X-Mailer", "X-Originating-IP")

OUTBOUND = [
    ("Received", " from laptop (unknown [10.1.2.3])\n\tby smtp.example"),
    ("From", " alice@sender.test"),
    ("User-Agent", " Mutt/2.2"),
    ("received", " from second hop"),
    ("X-Mailer", " Outlook"),
    ("X-Originating-IP", " [10.1.2.3]"),
    ("Subject", " caf\udce9 latin-1 bytes"),
    ("X-Mailer", " again"),
]


def test_privacy_pack_does_what_the_strip_stage_did(tmp_path: Path) -> None:
    rt = runtime(tmp_path, {"outbound_header_checks/00-privacy.pcre": PRIVACY.read_bytes()})
    tx = transaction(OUTBOUND, direction=Direction.OUTBOUND)
    outcome = run(rt, tx)
    # Highest occurrence first within each name, so every index is the one as received.
    for name in PRIVACY_NAMES:
        occ = [e.occurrence for e in outcome.edits if getattr(e, "name", "").lower() == name.lower()]
        assert occ == sorted(occ, reverse=True)
        assert len(occ) == sum(n.lower() == name.lower() for n, _ in OUTBOUND)
    # What the foundation's Strip stage did: every header of those names gone, the rest untouched.
    wanted = {n.lower() for n in PRIVACY_NAMES}
    expected = [f"{n}:{v}" for n, v in OUTBOUND if n.lower() not in wanted]
    assert names(tx) == expected == ["From: alice@sender.test", "Subject: caf\udce9 latin-1 bytes"]
    inbound = transaction(OUTBOUND)
    run(rt, inbound)
    assert len(inbound.message.headers) == len(OUTBOUND)


def _postmap_q(table: Path, key: str) -> str:
    cmd = [*POSTMAP_CMD, "-q", key, f"pcre:{table}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return proc.stdout.rstrip("\n")


ATTACH_CASES = [
    (
        'Content-Type: application/octet-stream; name="invoice.exe"',
        "REJECT 5.7.1 attachment type not allowed (.exe)",
    ),
    (
        'Content-Disposition: attachment; filename="a b.SCR"',
        "REJECT 5.7.1 attachment type not allowed (.SCR)",
    ),
    ("Content-Disposition: attachment;\n\tfilename=run.js", "REJECT 5.7.1 attachment type not allowed (.js)"),
    ("Content-Type: text/plain; name*=utf-8''x.vbs", "REJECT 5.7.1 attachment type not allowed (.vbs)"),
    ('Content-Type: application/pdf; name="report.pdf"', ""),
    ('Content-Type: application/zip; name="exe.zip"', ""),
    ('Content-Disposition: attachment; filename="notes.exe.txt"', ""),
    ("Content-Type: text/html; charset=utf-8", ""),
]


@pytest.mark.parametrize("header,want", ATTACH_CASES)
def test_attachment_pack_agrees_with_postmap(header: str, want: str) -> None:
    hit = Matcher([load_table(ATTACH)]).lookup(header.encode())
    got = hit.result.decode() if hit else ""
    assert got == want == _postmap_q(ATTACH, header)


@pytest.mark.parametrize(
    "subject,rejected",
    [
        ("ILOVEYOU", True),
        ("Here you have, ;o)", True),
        ("Re: Wicked screensaver", True),
        ("Re: ILOVEYOU", False),
        ("ILOVEYOU too", False),
        ("Wicked screensaver", False),
    ],
)
def test_malware_subjects(subject: str, rejected: bool) -> None:
    key = f"Subject: {subject}"
    hit = Matcher([load_table(SUBJECTS)]).lookup(key.encode())
    assert (hit is not None) == rejected
    assert (hit.result.decode() if hit else "") == _postmap_q(SUBJECTS, key)


def test_hygiene_packs_in_the_pipeline(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path,
        {
            "header_checks/50-malware-subjects.pcre": SUBJECTS.read_bytes(),
            "mime_header_checks/50-dangerous-attachments.pcre": ATTACH.read_bytes(),
        },
    )
    body = (
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n"
        b'Content-Type: application/octet-stream;\r\n\tname="setup.msi"\r\n\r\nAAAA\r\n--B--\r\n'
    )
    out = run(
        rt, transaction([("Subject", " hi"), ("Content-Type", " multipart/mixed; boundary=B")], body=body)
    )
    assert out.verdict.action is Action.REJECT
    assert str(out.verdict.reply) == "550 5.7.1 attachment type not allowed (.msi)"
    out = run(rt, transaction([("Subject", " ILOVEYOU")]))
    assert out.verdict.action is Action.REJECT


REFUSED = [
    ("pcre", b"/(*UTF)x/ INFO x", "PCRE verbs"),
    ("pcre", b"/(?x) a b/ INFO x", "inline options other than i, m and s"),
    ("pcre", b"/\\p{Alphabetic}/ INFO x", "property \\p{Alphabetic}"),
    ("pcre", b"/(?1)(a)/ INFO x", "recursion, subroutine"),
    ("pcre", b"/(?|(a)|(b))/ INFO x", "recursion, subroutine"),
    ("regexp", b"/(a*)+b/ INFO $1", "a repeated group that can match the empty string"),
    ("regexp", b"/x(^X){0,2}/ INFO x", "an anchor inside a group repeated"),
    ("regexp", b"/a*^b/ INFO x", "^ after something that may match nothing"),
    ("regexp", b"/a$b*/ INFO x", "$ before something that may match nothing"),
    ("regexp", b"/x(b+){0,2}/ INFO $1", "a group repeated {0,m}"),
    ("regexp", b"/x(\\<a)\\1/ INFO x", "a back reference to a group that is repeated"),
    ("regexp", b"/a(){2}\\1/ INFO x", "a back reference to a group that is repeated"),
    ("regexp", b"/a(x+){2}\\1/ INFO x", "a back reference to a group that is repeated"),
]


@pytest.mark.parametrize("kind,rule,reason", REFUSED)
def test_refused_constructs_are_reported_not_silently_different(
    tmp_path: Path, kind: str, rule: bytes, reason: str
) -> None:
    table = tmp_path / f"t.{kind}"
    table.write_bytes(rule + b"\n")
    parsed = load_table(table)
    assert not parsed.rules
    [problem] = [p for p in parsed.problems if p.skipped]
    assert problem.line == 1 and "not supported by mailwarden" in problem.reason and reason in problem.reason
