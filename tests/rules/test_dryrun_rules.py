"""Every action as it shows in `mailwarden dry-run --json`: verdict, edits and the `rules` entries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.rules.helpers import write_packs
from tests.rules.test_milter_actions import ACTIONS

SUBJECTS = [
    "reject",
    "tempfail",
    "discard",
    "hold",
    "warn",
    "info",
    "dunno",
    "pass",
    "redirect",
    "bcc",
    "filter",
]


def test_every_action_in_dry_run_json(tmp_path: Path) -> None:
    base = write_packs(tmp_path / "rules", {"header_checks/10-actions.pcre": ACTIONS})
    cfg = tmp_path / "mw.toml"
    cfg.write_text(f"[rules]\ndefault_packs = false\ndirs = [{str(base)!r}]\n[hopcount]\nlimit = 0\n")
    mails = tmp_path / "mail"
    mails.mkdir()
    for i, subject in enumerate(SUBJECTS):
        (mails / f"{i:02d}-{subject}.eml").write_bytes(
            b"Delivered-To: b@rcpt.test\nFrom: a@sender.test\nTo: b@rcpt.test\nSubject: "
            + subject.encode()
            + b"\n\nbody\n"
        )
    (mails / "99-edits.eml").write_bytes(
        b"From: a@sender.test\nSubject: x\nX-Drop: 1\nX-Strip: 2\nX-Old: o\nX-Same: s\nX-Pre: p\n\nbody\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mailwarden", "dry-run", "--json", "--config", str(cfg), str(mails)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = {Path(o["source"]).stem.split("-", 1)[1]: o for o in map(json.loads, proc.stdout.splitlines())}
    verdicts = {k: v["verdict"] for k, v in out.items()}
    assert verdicts == {
        "reject": "reject",
        "tempfail": "tempfail",
        "discard": "discard",
        "hold": "quarantine",
        "warn": "continue",
        "info": "continue",
        "dunno": "continue",
        "pass": "accept",
        "redirect": "continue",
        "bcc": "continue",
        "filter": "continue",
        "edits": "continue",
    }
    for subject in SUBJECTS:
        [entry] = [r for r in out[subject]["rules"] if r["header"].startswith("Subject")]
        assert entry["class"] == "header_checks" and entry["header"] == f"Subject: {subject}"
        assert entry["file"].endswith("10-actions.pcre") and isinstance(entry["line"], int)
    assert out["reject"]["reply"] == {"code": "550", "dsn": "5.7.1", "text": "message content rejected"}
    assert out["tempfail"]["reply"] == {"code": "451", "dsn": "4.7.1", "text": "come back later"}
    redirect_ops = [(e["op"], e["address"]) for e in out["redirect"]["edits"] if e["op"].endswith("rcpt")]
    assert redirect_ops == [("delete_rcpt", "<b@rcpt.test>"), ("add_rcpt", "<other@rcpt.test>")]
    assert [(e["op"], e["address"]) for e in out["bcc"]["edits"] if e["op"].endswith("rcpt")] == [
        ("add_rcpt", "<copy@rcpt.test>")
    ]
    edits = [(e["op"], e.get("name")) for e in out["edits"]["edits"] if e["op"].endswith("header")]
    # Header edits come bottom-up (each index as received); the rules entries in message order.
    assert edits[:6] == [
        ("add_header", "X-Prepended"),
        ("change_header", "X-Same"),
        ("delete_header", "X-Old"),
        ("add_header", "X-New"),
        ("delete_header", "X-Strip"),
        ("delete_header", "X-Drop"),
    ]
    assert [r["action"] for r in out["edits"]["rules"]][:5] == [
        "IGNORE",
        "STRIP",
        "REPLACE X-New: o",
        "REPLACE X-Same: was s",
        "PREPEND X-Prepended: yes",
    ]
