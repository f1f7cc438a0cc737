"""`mailwarden dmarc-lookup` and `mailwarden psl-refresh` (from a file:// URL: no network in tests)."""

from __future__ import annotations

import json

from dmarcsupport import DATA
from publicsuffixlist import PSLFILE

from mailwarden.cli import main
from mailwarden.dmarc import psl


def test_lookup(capsys):
    zone = str(DATA / "policies.zone")
    rc = main(["dmarc-lookup", "--zone", zone, "news.reject.example", "Multi.Example."])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 1  # one domain has no usable policy
    assert out[0]["policy_domain"] == "reject.example" and out[0]["record"]["p"] == "reject"
    assert out[1]["domain"] == "multi.example" and out[1]["status"] == "none"


def test_lookup_temperror(capsys):
    assert main(["dmarc-lookup", "--zone", str(DATA / "policies.zone"), "slow.example"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "temperror"


def test_psl_refresh_replaces_file_and_the_list_is_usable(tmp_path):
    target = tmp_path / "psl.dat"
    target.write_text("old")
    assert main(["psl-refresh", "--url", f"file://{PSLFILE}", str(target)]) == 0
    lst = psl.load(str(target))
    assert psl.org_domain("mail.example.co.uk", lst) == "example.co.uk"


def test_psl_refresh_refuses_a_bad_list(tmp_path, capsys):
    bad = tmp_path / "bad.dat"
    bad.write_text("<html>captive portal</html>\n")
    target = tmp_path / "psl.dat"
    target.write_text("old")
    assert main(["psl-refresh", "--url", f"file://{bad}", str(target)]) == 1
    assert target.read_text() == "old"
    assert "not a usable Public Suffix List" in capsys.readouterr().err
