"""The live resolver against a real DNS server on loopback: answers kept for their TTL, not longer."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from loopdns import LoopbackDns

from mailwarden.resolver.live import LiveResolver
from mailwarden.resolver.static import StaticZone

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the loopback DNS server binds port 53")


def serve(tmp_path: Path, text: str) -> LoopbackDns:
    zone = tmp_path / "z.zone"
    zone.write_text(text)
    return LoopbackDns(StaticZone.from_files([zone]))


def test_an_answer_is_asked_for_once_while_its_ttl_lasts(tmp_path: Path) -> None:
    dns = serve(tmp_path, 'a.test. 300 IN TXT "v=spf1 -all"\n')
    try:
        live = LiveResolver(timeout=2.0, nameservers=[dns.address])
        first = live.query("A.test", "txt")
        assert first.records == (b"v=spf1 -all",) and first.ttl == 300
        assert live.query("a.test.", "TXT") == first
        assert live.query("b.test", "TXT").rcode.name == "NXDOMAIN"
        assert dns.queries.count(("a.test.", "TXT")) == 1
    finally:
        dns.close()


def test_an_expired_answer_is_asked_for_again(tmp_path: Path) -> None:
    dns = serve(tmp_path, 'a.test. 1 IN TXT "old"\n')
    try:
        live = LiveResolver(timeout=2.0, nameservers=[dns.address])
        assert live.query("a.test", "TXT").records == (b"old",)
        zone = tmp_path / "new.zone"
        zone.write_text('a.test. 1 IN TXT "new"\n')
        dns.zone = StaticZone.from_files([zone])
        time.sleep(1.2)  # past the TTL: not a timing assertion, the answer must change
        assert live.query("a.test", "TXT").records == (b"new",)
        assert dns.queries.count(("a.test.", "TXT")) == 2
    finally:
        dns.close()
