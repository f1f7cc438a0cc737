"""Every header_checks action through the pure pipeline: verdicts, edits, report entries, log lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.rules.helpers import names, run, runtime, transaction

from mailwarden.core.decisions import (
    Action,
    AddHeader,
    AddRecipient,
    ChangeHeader,
    DeleteHeader,
    DeleteRecipient,
)
from mailwarden.core.model import Direction

HEADERS = [
    ("Received", " from a by b"),
    ("Subject", " hello world"),
    ("X-A", " 1"),
    ("X-A", " 2"),
    ("X-A", " 3"),
    ("To", " bob@rcpt.test"),
]


def one(tmp_path: Path, rules: str, headers=HEADERS, **kw):  # type: ignore[no-untyped-def]
    rt = runtime(tmp_path / "rules", {"header_checks/10-test.pcre": rules})
    tx = transaction(headers, **kw)
    return tx, run(rt, tx)


def test_reject_default_text(tmp_path: Path) -> None:
    _, out = one(tmp_path, "/^Subject: hello/ REJECT\n")
    assert out.verdict.action is Action.REJECT
    assert str(out.verdict.reply) == "550 5.7.1 message content rejected"
    assert out.rules == [
        {
            "file": str(tmp_path / "rules/header_checks/10-test.pcre"),
            "line": 1,
            "class": "header_checks",
            "header": "Subject: hello world",
            "action": "REJECT",
        }
    ]
    assert any(
        n.startswith(
            "4QID: reject: header Subject: hello world from mx.sender.test[192.0.2.1];"
            " from=<alice@sender.test> to=<bob@rcpt.test> proto=ESMTP helo=<mx.sender.test>"
        )
        for n in out.log
    )


def test_reject_with_code_and_text(tmp_path: Path) -> None:
    _, out = one(tmp_path, "/^Subject: (\\w+)/ REJECT 5.7.0 no $1 here\n")
    assert str(out.verdict.reply) == "550 5.7.0 no hello here"


def test_reject_4xx_is_tempfail(tmp_path: Path) -> None:
    _, out = one(tmp_path, "/^Subject:/ REJECT 4.7.1 try later\n")
    assert out.verdict.action is Action.TEMPFAIL
    assert str(out.verdict.reply) == "451 4.7.1 try later"


def test_discard(tmp_path: Path) -> None:
    _, out = one(tmp_path, "/^X-A: 2/ DISCARD spam\n")
    assert out.verdict.action is Action.DISCARD
    assert out.decided_by == "header_checks"


def test_hold_keeps_checking_and_a_later_reject_wins(tmp_path: Path) -> None:
    _, out = one(tmp_path, "/^Subject:/ HOLD look at it\n/^X-A: 3/ IGNORE\n")
    assert out.verdict.action is Action.QUARANTINE and out.verdict.reason == "look at it"
    assert DeleteHeader("X-A", 3) in out.edits
    _, out = one(tmp_path / "b", "/^Subject:/ HOLD\n/^To:/ REJECT no\n")
    assert out.verdict.action is Action.REJECT


def test_ignore_renumbers_occurrences(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^X-A: [23]/ IGNORE\n")
    # Emitted bottom-up, highest occurrence first, so each refers to the headers as received.
    assert [e for e in out.edits if isinstance(e, DeleteHeader)] == [
        DeleteHeader("X-A", 3),
        DeleteHeader("X-A", 2),
    ]
    assert names(tx) == ["Received: from a by b", "Subject: hello world", "X-A: 1", "To: bob@rcpt.test"]


def test_strip_logs(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^Received:/ STRIP privacy\n")
    assert out.edits == [DeleteHeader("Received", 1)]
    assert any(
        ": strip: header Received: from a by b from " in n and n.endswith(": privacy") for n in out.log
    )
    assert "Received" not in [h.name for h in tx.message.headers]


def test_replace_same_name_is_chgheader(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^X-A: (2)/ REPLACE X-A: was $1\n")
    assert out.edits == [ChangeHeader("X-A", 2, " was 2")]
    assert names(tx)[3] == "X-A: was 2"


def test_replace_other_name_deletes_and_inserts_in_place(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^X-A: 2/ REPLACE X-B: new\n")
    assert out.edits == [DeleteHeader("X-A", 2), AddHeader("X-B", " new", 4)]
    assert names(tx)[2:5] == ["X-A: 1", "X-B: new", "X-A: 3"]


def test_prepend_goes_above_and_is_not_inspected(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^X-A:/ PREPEND X-A: prepended\n")
    # Visible position p is insheader index p+1 (the MTA's hidden Received is index 0).
    assert out.edits == [
        AddHeader("X-A", " prepended", 5),
        AddHeader("X-A", " prepended", 4),
        AddHeader("X-A", " prepended", 3),
    ]
    assert names(tx)[2:8] == [
        "X-A: prepended",
        "X-A: 1",
        "X-A: prepended",
        "X-A: 2",
        "X-A: prepended",
        "X-A: 3",
    ]


def test_prepend_then_ignore_of_a_lower_header(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^Subject:/ PREPEND X-A: zero\n/^X-A: 2/ IGNORE\n")
    assert out.edits == [DeleteHeader("X-A", 2), AddHeader("X-A", " zero", 2)]
    assert names(tx) == [
        "Received: from a by b",
        "X-A: zero",
        "Subject: hello world",
        "X-A: 1",
        "X-A: 3",
        "To: bob@rcpt.test",
    ]


@pytest.mark.parametrize("word,log", [("WARN", "warning"), ("INFO", "info")])
def test_warn_info(tmp_path: Path, word: str, log: str) -> None:
    _, out = one(tmp_path, f"/^Subject:/ {word} looked\n")
    assert out.verdict.action is Action.CONTINUE and not out.edits
    assert out.rules[0]["action"] == f"{word} looked"
    assert any(f": {log}: header Subject: hello world from " in n and n.endswith(": looked") for n in out.log)


def test_dunno_stops_the_search_for_that_header(tmp_path: Path) -> None:
    _, out = one(tmp_path, "/^Subject:/ DUNNO\n/^Subject:/ REJECT\n/^To:/ OK\n")
    assert out.verdict.action is Action.CONTINUE
    assert [r["action"] for r in out.rules] == ["DUNNO", "OK"]


def test_pass_accepts_and_stops_all_checks(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path / "rules",
        {
            "header_checks/10-a.pcre": "/^Subject:/ PASS trusted\n/^To:/ REJECT\n",
            "body_checks/10-b.pcre": "/hello/ REJECT\n",
        },
    )
    tx = transaction(HEADERS)
    out = run(rt, tx)
    assert out.verdict.action is Action.ACCEPT
    assert [r["action"] for r in out.rules] == ["PASS trusted"]


def test_redirect_replaces_all_recipients(tmp_path: Path) -> None:
    tx, out = one(
        tmp_path, "/^Subject:/ REDIRECT other@rcpt.test\n", rcpts=("<a@rcpt.test>", "<b@rcpt.test>")
    )
    assert out.edits == [
        DeleteRecipient("<a@rcpt.test>"),
        DeleteRecipient("<b@rcpt.test>"),
        AddRecipient("<other@rcpt.test>"),
    ]
    assert tx.envelope.rcpts == ("<other@rcpt.test>",)


def test_bcc_adds_a_recipient_once(tmp_path: Path) -> None:
    tx, out = one(tmp_path, "/^X-A:/ BCC copy@rcpt.test\n")
    assert out.edits == [AddRecipient("<copy@rcpt.test>")]
    assert tx.envelope.rcpts == ("<bob@rcpt.test>", "<copy@rcpt.test>")


def test_filter_warns_at_load_and_is_ignored(tmp_path: Path) -> None:
    from mailwarden.rules.loader import load_table

    path = tmp_path / "rules/header_checks/10-test.pcre"
    _, out = one(tmp_path, "/^Subject:/ FILTER smtp:[127.0.0.1]:10025\n")
    assert out.verdict.action is Action.CONTINUE and not out.edits
    assert any("FILTER has no milter equivalent" in p.reason for p in load_table(path).problems)


def test_first_match_across_tables_in_lexical_order(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path / "rules",
        {
            "header_checks/50-late.pcre": "/^Subject:/ REJECT late\n",
            "header_checks/00-early.pcre": "/^Subject:/ WARN early\n",
        },
    )
    out = run(rt, transaction(HEADERS))
    assert out.verdict.action is Action.CONTINUE
    assert [r["action"] for r in out.rules] == ["WARN early"]


def test_top_level_mime_headers_go_to_mime_header_checks(tmp_path: Path) -> None:
    headers = [("Subject", " s"), ("Content-Type", " text/plain"), ("MIME-Version", " 1.0")]
    # mime_header_checks defaults to the header_checks tables while it has none (Postfix default).
    _, out = one(tmp_path, "/^Content-Type:/ WARN ct\n", headers=headers)
    assert out.rules[0]["class"] == "mime_header_checks"
    rt = runtime(
        tmp_path / "r2",
        {
            "header_checks/10.pcre": "/^Content-Type:/ REJECT header\n",
            "mime_header_checks/10.pcre": "/^MIME-Version:/ WARN mime\n",
        },
    )
    out = run(rt, transaction(headers))
    assert out.verdict.action is Action.CONTINUE
    assert [(r["class"], r["action"]) for r in out.rules] == [("mime_header_checks", "WARN mime")]


MULTIPART = (
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain\r\n"
    b"X-Part: one\r\n"
    b"\r\n"
    b"first part text\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner subject\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--XX--\r\n"
)


def test_mime_parts_nested_and_body_classes(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path / "rules",
        {
            "mime_header_checks/10.pcre": "/^X-Part: (.*)/ WARN part $1\n/^Content-Type: (.*)/ INFO ct $1\n",
            "nested_header_checks/10.pcre": "/^Subject: (.*)/ WARN nested $1\n",
            "body_checks/10.pcre": "/^(.*text|inner body|--XX.*)$/ INFO body $1\n",
        },
    )
    tx = transaction(
        [("Subject", " top"), ("Content-Type", ' multipart/mixed; boundary="XX"')], body=MULTIPART
    )
    out = run(rt, tx)
    got = [(r["class"], r["action"]) for r in out.rules]
    assert got == [
        ("mime_header_checks", 'INFO ct multipart/mixed; boundary="XX"'),
        ("body_checks", "INFO body --XX"),
        ("mime_header_checks", "INFO ct text/plain"),
        ("mime_header_checks", "WARN part one"),
        ("body_checks", "INFO body first part text"),
        ("body_checks", "INFO body --XX"),
        ("mime_header_checks", "INFO ct message/rfc822"),
        ("nested_header_checks", "WARN nested inner subject"),
        ("mime_header_checks", "INFO ct text/plain"),
        ("body_checks", "INFO body inner body"),
        ("body_checks", "INFO body --XX--"),
    ]


def test_part_header_edit_is_not_possible_but_terminal_actions_work(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path / "rules", {"mime_header_checks/10.pcre": "/^X-Part:/ IGNORE\n/^X-Bad:/ REJECT bad part\n"}
    )
    body = MULTIPART.replace(b"X-Part: one\r\n", b"X-Part: one\r\nX-Bad: yes\r\n")
    tx = transaction([("Content-Type", ' multipart/mixed; boundary="XX"')], body=body)
    out = run(rt, tx)
    assert out.verdict.action is Action.REJECT and out.verdict.reply is not None
    assert out.verdict.reply.text == "bad part"
    assert not out.edits
    assert any("not possible in a milter" in n for n in out.log)


def test_body_checks_size_limit(tmp_path: Path) -> None:
    body = b"".join(b"line %d\r\n" % i for i in range(8000)) + b"needle\r\n"
    packs = {"body_checks/10.pcre": "/^needle$/ REJECT found\n"}
    out = run(runtime(tmp_path / "a", packs), transaction([("Subject", " s")], body=body))
    assert out.verdict.action is Action.CONTINUE  # beyond the first 51200 bytes
    out = run(
        runtime(tmp_path / "b", packs, "body_size_limit = 100000"),
        transaction([("Subject", " s")], body=body),
    )
    assert out.verdict.action is Action.REJECT


def test_outbound_class_only_for_outbound_mail(tmp_path: Path) -> None:
    rt = runtime(
        tmp_path / "rules", {"outbound_header_checks/00.pcre": "/^X-A:/ IGNORE\n/^Subject:/ REJECT\n"}
    )
    tx = transaction(HEADERS)
    out = run(rt, tx)
    assert not out.edits and out.verdict.action is Action.CONTINUE
    tx = transaction(HEADERS, direction=Direction.OUTBOUND)
    out = run(rt, tx)
    # REJECT is not an smtp_header_checks action: logged as unsupported, not applied.
    assert out.verdict.action is Action.CONTINUE
    assert [h.name for h in tx.message.headers] == ["Received", "Subject", "To"]
    assert any("unsupported command in outbound_header_checks: REJECT" in n for n in out.log)


def test_header_value_bytes_are_kept(tmp_path: Path) -> None:
    headers = [("Subject", "  two spaces\n\tand fold \udce9")]
    _, out = one(tmp_path, "/^Subject: (.*)$/ REPLACE Subject: [$1]\n", headers=headers)
    assert out.edits == [ChangeHeader("Subject", 1, " [ two spaces\n\tand fold \udce9]")]


def test_timeout_counts_as_no_match_or_tempfails(tmp_path: Path) -> None:
    rules = "/^X-Slow: (a|aa)+$/ REJECT slow\n/^X-Slow:/ WARN fast\n"
    headers = [("X-Slow", " " + "a" * 40 + "!")]
    rt = runtime(tmp_path / "a", {"header_checks/10.pcre": rules}, "timeout = 0.02")
    out = run(rt, transaction(headers))
    assert out.verdict.action is Action.CONTINUE
    assert [r["action"] for r in out.rules] == ["WARN fast"]
    assert any("regex timeout" in n for n in out.log)
    rt = runtime(tmp_path / "b", {"header_checks/10.pcre": rules}, 'timeout = 0.02\non_timeout = "tempfail"')
    out = run(rt, transaction(headers))
    assert out.verdict.action is Action.TEMPFAIL
