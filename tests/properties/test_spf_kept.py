"""A kept SPF result (spf/query.py KeptSpf) is always the result a new pyspf check gives: over
random records, client addresses, senders and HELO names, with the DNS data changing between
checks (a record edited, a timeout appearing or going away), each check through KeptSpf is
compared with check_spf() on the same data at that moment."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from tests.properties.test_parsers_raise_only_their_errors import HELOS, IPS, SENDERS, spf_zones

from mailwarden.core.auth import SpfScope, SpfStatus
from mailwarden.core.ports import DnsAnswer
from mailwarden.resolver.static import StaticZone
from mailwarden.spf.query import KeptSpf, check_spf


class Switched:
    """A resolver answering from one of several zones: the DNS data as it changes over time."""

    def __init__(self, zones: list[StaticZone]) -> None:
        self.zones = zones
        self.now = 0

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        return self.zones[self.now].query(name, rdtype)

    def txt(self, name: str) -> list[bytes]:
        return self.zones[self.now].txt(name)


CHECKS = st.tuples(IPS, SENDERS, HELOS, st.sampled_from(list(SpfScope)))
STEPS = st.lists(st.tuples(st.integers(0, 2), CHECKS), min_size=1, max_size=12)


@given(st.lists(spf_zones(), min_size=3, max_size=3), STEPS)
@example([StaticZone.from_text(z) for z in (
    's.test. 60 IN TXT "v=spf1 ip4:192.0.2.1 -all"',
    's.test. 60 IN TXT "v=spf1 include:x.test -all"\nx.test. 60 IN TXT "v=spf1 ip4:192.0.2.1 -all"',
    's.test. 60 IN TXT "v=spf1 include:x.test -all"\nx.test. 60 IN TXT "v=spf1 -all"')],
    [(i, ("192.0.2.1", "a@s.test", "x.test", SpfScope.MAILFROM)) for i in (0, 0, 1, 1, 2, 2, 0)])
def test_a_kept_result_is_what_a_new_check_gives(
        zones: list[StaticZone],
        steps: list[tuple[int, tuple[str, str, str, SpfScope]]]) -> None:
    resolver = Switched(zones)
    kept = KeptSpf(resolver)
    for now, (ip, sender, helo, identity) in steps:
        resolver.now = now
        assert kept.check(ip, sender, helo, identity) == check_spf(resolver, ip, sender, helo, identity)


def test_results_are_kept_and_checked_again_when_an_answer_changes() -> None:
    zone = StaticZone.from_text('s.test. 60 IN TXT "v=spf1 ip4:192.0.2.1 -all"', record_queries=True)
    kept = KeptSpf(zone)
    assert kept.check("192.0.2.1", "a@s.test", "h.test").result is SpfStatus.PASS
    assert kept.check("192.0.2.1", "a@s.test", "h.test").result is SpfStatus.PASS
    assert zone.queries == [("s.test", "TXT")] * 2  # the second check only asked again
    zone.add_text('s.test. 60 IN TXT "v=spf1 -all"\n', "edit")  # now two records: permerror
    assert kept.check("192.0.2.1", "a@s.test", "h.test").result is SpfStatus.PERMERROR


def test_temporary_errors_and_the_time_macro_are_not_kept() -> None:
    zone = StaticZone.from_text('t.test. 60 IN TXT "v=spf1 exists:%{t}.t.test -all"\n'
                                'u.test. 60 IN TXT "v=spf1 include:slow.test -all"\n'
                                ';! TIMEOUT slow.test.', record_queries=True)
    kept = KeptSpf(zone)
    for sender in ("a@t.test", "a@u.test"):
        first = kept.check("192.0.2.1", sender, "h.test")
        assert first == kept.check("192.0.2.1", sender, "h.test")
    assert kept.check("192.0.2.1", "a@u.test", "h.test").result is SpfStatus.TEMPERROR
    assert not kept._kept  # each check ran pyspf again
