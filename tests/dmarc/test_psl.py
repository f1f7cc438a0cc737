"""Organizational domains from the Public Suffix List (RFC 7489 section 3.2)."""

from __future__ import annotations

import pytest

from mailwarden.dmarc import psl
from mailwarden.errors import ConfigError


@pytest.mark.parametrize("domain,org", [
    ("example.com", "example.com"),
    ("a.b.example.com", "example.com"),
    ("EXAMPLE.COM.", "example.com"),
    ("example.co.uk", "example.co.uk"),
    ("mail.example.co.uk", "example.co.uk"),
    ("co.uk", "co.uk"),  # a public suffix is its own organizational domain
    ("com", "com"),
    ("a.b.c.kawasaki.jp", "b.c.kawasaki.jp"),  # wildcard rule *.kawasaki.jp
    ("www.city.kawasaki.jp", "city.kawasaki.jp"),  # exception rule !city.kawasaki.jp
    ("x.unknowntld", "x.unknowntld"),
])
def test_icann_suffixes(domain, org):
    assert psl.org_domain(domain, psl.load()) == org


def test_private_section_counts_by_default():
    lst = psl.load()
    assert psl.org_domain("someone.github.io", lst) == "someone.github.io"
    assert psl.org_domain("www.someone.github.io", lst) == "someone.github.io"


def test_private_section_can_be_ignored():
    lst = psl.load(private=False)
    assert psl.org_domain("someone.github.io", lst) == "github.io"
    assert psl.org_domain("mail.example.co.uk", lst) == "example.co.uk"


def test_own_list_file(tmp_path):
    f = tmp_path / "psl.dat"
    f.write_text("// ===BEGIN ICANN DOMAINS===\nexample\ncorp.example\n// ===END ICANN DOMAINS===\n")
    lst = psl.load(str(f))
    assert psl.org_domain("a.b.corp.example", lst) == "b.corp.example"
    assert psl.org_domain("a.other.example", lst) == "other.example"


def test_missing_list_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="psl_file"):
        psl.load(str(tmp_path / "nope.dat"))
