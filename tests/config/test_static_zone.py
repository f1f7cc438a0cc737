"""The static zone: RFC 1035 master files answer every query; absent names are NXDOMAIN."""

from __future__ import annotations

import pytest

from mailwarden.core.ports import Rcode
from mailwarden.errors import ConfigError, DnsTempError
from mailwarden.resolver.static import StaticZone

ZONE = """
sel._domainkey.example.com. 300 IN TXT "v=DKIM1; k=rsa; " "p=MIIB"
example.com. 300 IN MX 10 mx.example.com.
other.org. 60 IN TXT "v=spf1 -all"
;! TIMEOUT _dmarc.slow.test. TXT
;! SERVFAIL broken.test.
"""


def test_answers_from_many_domains_without_soa() -> None:
    zone = StaticZone.from_text(ZONE)
    assert zone.txt("SEL._domainkey.Example.COM.") == [b"v=DKIM1; k=rsa; p=MIIB"]
    assert zone.txt("other.org") == [b"v=spf1 -all"]
    assert zone.query("example.com", "MX").records == ("10 mx.example.com.",)


def test_nxdomain_and_nodata() -> None:
    zone = StaticZone.from_text(ZONE)
    assert zone.query("absent.example", "TXT").rcode is Rcode.NXDOMAIN
    nodata = zone.query("example.com", "A")
    assert nodata.rcode is Rcode.NOERROR and nodata.records == ()


def test_fault_markers_raise_temporary_errors() -> None:
    zone = StaticZone.from_text(ZONE)
    with pytest.raises(DnsTempError, match="timed out"):
        zone.txt("_dmarc.slow.test")
    with pytest.raises(DnsTempError, match="SERVFAIL"):
        zone.query("broken.test", "MX")


def test_bad_zone_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"dns\.zones"):
        StaticZone.from_text("this is not a zone line at all ( \n")
