"""dry-run over .eml directories, mbox and Maildir: one JSON object per message, --write output."""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
from pathlib import Path

from mailwarden.core.wire import parse_message

ARCHIVED = (
    b"Return-Path: <alice@sender.test>\n"
    b"Delivered-To: bob@rcpt.test\n"
    b"Received: from mail.sender.test (mail.sender.test [192.0.2.1])\n"
    b"\tby mx.rcpt.test (Postfix) with ESMTP id 4ABC\n"
    b"\tfor <bob@rcpt.test>; Sun, 22 Nov 2026 02:43:31 +0000 (UTC)\n"
    b"Received: from laptop by mail.sender.test\n"
    b"From: Alice <alice@sender.test>\n"
    b"To: bob@rcpt.test\n"
    b"Subject: hello\n"
    b"User-Agent: Mutt\n"
    b"\n"
    b"body line\n"
)
KEYS = {"source", "direction", "verdict", "reply", "edits", "auth", "rules"}


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "dry-run", *args], capture_output=True, text=True, timeout=60
    )


def loop_message(hops: int) -> bytes:
    return b"".join(b"Received: from h%d by r%d\n" % (i, i) for i in range(hops)) + b"Subject: loop\n\nx\n"


def test_directory_of_eml_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.eml").write_bytes(ARCHIVED)
    (tmp_path / "sub" / "loop.eml").write_bytes(loop_message(49))
    (tmp_path / "ignored.txt").write_bytes(b"not a message")
    proc = dry_run("--json", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 2
    assert all(set(obj) >= KEYS for obj in lines)
    first, loop = lines
    assert first["direction"] == "inbound" and first["verdict"] == "continue"
    assert first["envelope"] == {
        "client_ip": "192.0.2.1", "helo": "mail.sender.test",
        "mail_from": "alice@sender.test", "rcpts": ["bob@rcpt.test"],
    }
    assert loop["verdict"] == "reject"
    assert loop["reply"] == {"code": "554", "dsn": "5.4.0", "text": "Error: too many hops"}
    assert "continue=1" in proc.stderr and "reject=1" in proc.stderr


def test_mbox_with_index_and_outbound_edits(tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "box"))
    box.add(ARCHIVED)
    box.add(loop_message(3))
    box.flush()
    proc = dry_run("--json", "--auth-user", "alice", str(tmp_path / "box"))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [obj["index"] for obj in lines] == [0, 1]
    assert all(obj["source"] == str(tmp_path / "box") for obj in lines)
    assert lines[0]["direction"] == "outbound"
    ops = [(e["op"], e["name"], e["occurrence"]) for e in lines[0]["edits"]]
    # The MTA's own Received is hidden; only the client's hop and User-Agent go.
    assert sorted(ops) == [("delete_header", "Received", 1), ("delete_header", "User-Agent", 1)]
    assert [(e["name"], e["occurrence"]) for e in lines[1]["edits"]] == [("Received", 3), ("Received", 2),
                                                                        ("Received", 1)]


def test_maildir_and_write(tmp_path: Path) -> None:
    md = mailbox.Maildir(str(tmp_path / "Maildir"))
    md.add(ARCHIVED)
    out = tmp_path / "out"
    proc = dry_run("--json", "--daemon-name", "ORIGINATING", "--write", str(out), str(tmp_path / "Maildir"))
    assert proc.returncode == 0, proc.stderr
    (obj,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert obj["direction"] == "outbound"
    (written,) = list(out.iterdir())
    parsed = parse_message(written.read_bytes())
    names = [h.name for h in parsed.headers]
    assert names.count("Received") == 1  # the MTA's own stays; the client's hop went
    assert "User-Agent" not in names and "Subject" in names
    assert parsed.body == b"body line\r\n"


def test_unreadable_file_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "ok.eml").write_bytes(ARCHIVED)
    proc = dry_run("--json", str(tmp_path / "missing.eml"), str(tmp_path / "ok.eml"))
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1
    assert "missing.eml: cannot read" in proc.stderr


def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    assert dry_run().returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[hopcount]\nlimit = -1\n")
    proc = dry_run("--config", str(bad), str(tmp_path))
    assert proc.returncode == 2 and "hopcount.limit: must not be negative" in proc.stderr


def test_flags_override_derived_envelope(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(ARCHIVED)
    proc = dry_run("--json", "--client-ip", "203.0.113.9", "--mail-from", "x@y.test", "--rcpt", "r@z.test",
                   str(tmp_path / "a.eml"))
    (obj,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert obj["envelope"]["client_ip"] == "203.0.113.9"
    assert obj["envelope"]["mail_from"] == "x@y.test"
    assert obj["envelope"]["rcpts"] == ["r@z.test"]


def test_a_body_without_a_final_newline_is_read_as_postfix_delivers_it(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(ARCHIVED.rstrip(b"\n"))
    out = tmp_path / "out"
    proc = dry_run("--json", "--write", str(out), str(tmp_path / "a.eml"))
    assert proc.returncode == 0, proc.stderr
    (written,) = out.iterdir()
    assert written.read_bytes().endswith(b"\n\nbody line\n")


def test_dry_run_gives_the_milters_tempfail_for_an_edit_it_cannot_write(tmp_path: Path) -> None:
    # A REPLACE that copies non-UTF-8 bytes: libmilter cannot take the header, the milter
    # temp-fails the message, and the dry-run must say so too (the check lives in the core).
    rules = tmp_path / "rules" / "header_checks"
    rules.mkdir(parents=True)
    (rules / "10-copy.pcre").write_text("/^Subject: (.*)/ REPLACE X-Old-Subject: $1\n")
    conf = tmp_path / "m.toml"
    conf.write_text('[rules]\ndefault_packs = false\ndirs = ["rules"]\n')
    (tmp_path / "a.eml").write_bytes(ARCHIVED.replace(b"Subject: hello", b"Subject: caf\xe9"))
    proc = subprocess.run([sys.executable, "-m", "mailwarden", "dry-run", "--json", "-c", str(conf),
                           str(tmp_path / "a.eml")], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.decode("utf-8", "surrogateescape"))
    assert report["verdict"] == "tempfail", report
    assert report["reply"]["text"] == "cannot write non-UTF-8 header value"
