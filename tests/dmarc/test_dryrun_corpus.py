"""dry-run over a corpus: envelopes from Return-Path and the topmost Received, DNS from a static
zone, one DMARC verdict per message in the JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from dmarcsupport import DATA

EXPECTED = {
    # file: (verdict, spf, dmarc result, disposition)
    "01-spf-pass.eml": ("continue", "pass", "pass", "none"),
    "02-reject.eml": ("reject", "fail", "fail", "reject"),
    "03-quarantine.eml": ("quarantine", "fail", "fail", "quarantine"),
    "04-no-policy.eml": ("continue", "none", "none", "none"),
    "05-none-policy.eml": ("continue", "fail", "fail", "none"),
    "06-temperror.eml": ("tempfail", "none", "temperror", "tempfail"),  # only _dmarc times out
    "07-two-from.eml": ("reject", "pass", "permerror", "reject"),
    "08-forged-ar.eml": ("reject", "fail", "fail", "reject"),
    "09-bounce-helo.eml": ("continue", "pass", "pass", "none"),
}


def test_dry_run_gives_a_dmarc_verdict_per_message():
    files = sorted((DATA / "corpus").glob("*.eml"))
    assert len(files) == len(EXPECTED)
    out = subprocess.run(
        [sys.executable, "-m", "mailwarden", "dry-run", "--json", "--zone", str(DATA / "policies.zone"),
         *map(str, files)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode in (0, 1), out.stderr
    reports = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(reports) == len(files)
    for report in reports:
        name = report["source"].rsplit("/", 1)[-1]
        auth = report["auth"]
        dmarc = auth["dmarc"]
        got = (report["verdict"], auth["spf"]["result"], dmarc["result"], dmarc["disposition"])
        assert got == EXPECTED[name], name
        assert set(auth["spf"]) >= {"result", "domain"}
        assert set(auth["dmarc"]) >= {"result", "domain", "policy", "disposition", "alignment"}
        assert set(auth["dmarc"]["alignment"]) == {"dkim", "spf"}
    by_name = {r["source"].rsplit("/", 1)[-1]: r for r in reports}
    assert by_name["02-reject.eml"]["reply"]["text"] == "rejected by DMARC policy for reject.example"
    assert by_name["09-bounce-helo.eml"]["auth"]["spf"]["identity"] == "helo"
    assert by_name["01-spf-pass.eml"]["auth"]["dmarc"]["alignment"] == {"dkim": "fail", "spf": "pass"}
    # The forged A-R claiming the receiving host's id is deleted only when it is our id: here the
    # authserv-id defaults to the host name, so what counts is that a forged pass changes nothing.
    assert by_name["08-forged-ar.eml"]["auth"]["dmarc"]["result"] == "fail"
