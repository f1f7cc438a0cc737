"""The reporting tags of DMARC records (RFC 7489 section 6.3): rua=, ruf=, fo=, rf=, ri=, and how
`mailwarden dmarc-lookup` shows them."""

from __future__ import annotations

import json

import pytest

from mailwarden.cli import main
from mailwarden.dmarc.record import parse


def test_defaults_when_absent():
    r = parse("v=DMARC1; p=none")
    assert (r.rua, r.ruf, r.fo, r.rf, r.ri) == ((), (), ("0",), ("afrf",), 86400)


def test_all_reporting_tags():
    r = parse("v=DMARC1; p=reject; rua=mailto:a@x.example!10m, mailto:b@y.example;"
              " ruf=mailto:f@x.example!50k,https://bad.example/r; fo=1:d:s; rf=afrf; ri=3600")
    assert r.rua == ("mailto:a@x.example!10m", "mailto:b@y.example")
    assert r.ruf == ("mailto:f@x.example!50k", "https://bad.example/r")
    assert (r.fo, r.rf, r.ri) == (("1", "d", "s"), ("afrf",), 3600)
    assert r.problems == ()


@pytest.mark.parametrize("fo,expected", [
    ("0", ("0",)), ("1", ("1",)), ("d:s", ("d", "s")), ("D : S", ("d", "s")),
    ("1:x", ("1",)), ("x", ("0",)), ("", ("0",)), ("s:s", ("s",)),
])
def test_fo_values(fo, expected):
    assert parse(f"v=DMARC1; p=none; fo={fo}").fo == expected


@pytest.mark.parametrize("ri", ["0", "-5", "1.5", "day", "4294967296"])
def test_bad_ri_defaults_to_a_day(ri):
    r = parse(f"v=DMARC1; p=none; ri={ri}")
    assert r.ri == 86400 and any("ri=" in p for p in r.problems)


def test_unknown_rf_and_invalid_uris_are_ignored_and_noted():
    r = parse("v=DMARC1; p=none; rf=iodef; rua=not a uri,mailto:ok@x.example; ruf=junk")
    assert r.rf == ("afrf",) and r.rua == ("mailto:ok@x.example",) and r.ruf == ()
    assert len(r.problems) == 3


def test_lookup_shows_reporting_tags(tmp_path, capsys):
    zone = tmp_path / "z.zone"
    zone.write_text('$ORIGIN example.\n$TTL 300\n'
                    '_dmarc.rep IN TXT "v=DMARC1; p=quarantine; rua=mailto:a@rep.example;'
                    ' ruf=mailto:f@rep.example; fo=d:s; ri=7200"\n')
    assert main(["dmarc-lookup", "--zone", str(zone), "rep.example"]) == 0
    record = json.loads(capsys.readouterr().out)["record"]
    assert record["rua"] == ["mailto:a@rep.example"] and record["ruf"] == ["mailto:f@rep.example"]
    assert (record["fo"], record["rf"], record["ri"]) == ("d:s", "afrf", 7200)
