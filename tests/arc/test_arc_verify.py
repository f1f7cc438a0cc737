"""Our ARC verifier on its own: limits, DNS failures, key rules and caching, oldest-pass."""

from __future__ import annotations

from arcsupport import dkim_signed, dkimpy_hop, forced_hop, our_hop, ours, signing_key, zone

from mailwarden.arc.chain import instance_of
from mailwarden.arc.verify import ArcPolicy
from mailwarden.core.model import Header
from mailwarden.core.ports import DnsAnswer
from mailwarden.resolver.static import StaticZone


class CountingZone(StaticZone):
    """The ARC zone, counting TXT lookups."""

    def __init__(self) -> None:
        base = zone()
        self.__dict__.update(base.__dict__)
        self.lookups: list[str] = []

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.lookups.append(name)
        return super().query(name, rdtype)


DOMAINS = ("forwarder.example", "list.example.org", "relay.example", "mx.example.com")


def hops(n: int, same_sealer: bool = False) -> bytes:
    raw = dkim_signed()
    for i in range(n):
        raw = our_hop(raw, DOMAINS[0]) if same_sealer else dkimpy_hop(raw, DOMAINS[i % len(DOMAINS)])
    return raw


def test_a_chain_over_max_instances_fails_without_dns_or_crypto() -> None:
    raw = hops(3)
    counting = CountingZone()
    result = ours(raw, ArcPolicy(max_instances=2), counting)
    assert result.result == "fail" and "more than 2" in result.reason
    assert counting.lookups == []
    assert ours(raw, ArcPolicy(max_instances=3), counting).result == "pass"
    assert counting.lookups


def test_fifty_one_sets_fail_by_default_without_lookups() -> None:
    fake = b"".join(b"ARC-Seal: i=%d; a=rsa-sha256; cv=pass; d=x.example; s=s; b=AAAA\r\n" % i
                    for i in range(1, 52))
    counting = CountingZone()
    result = ours(fake + dkim_signed(), resolver=counting)
    assert result.result == "fail" and "more than 50" in result.reason and counting.lookups == []


def test_keys_are_looked_up_once_per_sealer() -> None:
    counting = CountingZone()
    assert ours(hops(4, same_sealer=True), resolver=counting).result == "pass"
    assert counting.lookups.count("rsa._domainkey.forwarder.example") == 1


def test_dns_timeout_on_a_seal_key_is_temperror_never_fail() -> None:
    raw = our_hop(dkim_signed(), "forwarder.example")
    slow = forced_hop(raw, signing_key("rsa", "forwarder.example", "slow"), "pass")
    result = ours(slow)
    assert result.result == "temperror", result


def test_missing_key_and_weak_key_fail() -> None:
    base = our_hop(dkim_signed(), "forwarder.example")
    nokey = forced_hop(base, signing_key("rsa", "forwarder.example", "nokey"), "pass")
    assert ours(nokey).result == "fail" and "no key record" in ours(nokey).reason
    weak = forced_hop(base, signing_key("weak", "forwarder.example"), "pass")
    assert ours(weak).result == "pass"  # 1024 bits: RFC 8301's minimum
    strict = ours(weak, ArcPolicy(min_rsa_bits=2048))
    assert strict.result == "fail" and "below 2048" in strict.reason


def test_oldest_pass_and_chain_json() -> None:
    raw = our_hop(dkim_signed(), "forwarder.example")
    raw = our_hop(raw, "list.example.org", modify=lambda r: r + b"footer\r\n")
    raw = our_hop(raw, "relay.example")
    result = ours(raw)
    assert (result.result, result.oldest_pass) == ("pass", 2)
    chain = result.to_json()["chain"]
    assert [(c["i"], c["d"], c["s"], c["cv"], c["result"]) for c in chain] == [
        (1, "forwarder.example", "rsa", "none", "pass"),
        (2, "list.example.org", "rsa", "pass", "pass"),
        (3, "relay.example", "rsa", "pass", "pass"),
    ]
    assert [c["ams"] for c in chain] == ["fail", "pass", "pass"]


def test_newest_ams_must_verify_older_need_not() -> None:
    raw = our_hop(our_hop(dkim_signed(), "forwarder.example"), "relay.example")
    assert ours(raw).oldest_pass == 0
    broken = raw.replace(b"Hello list", b"Hello LIST")
    result = ours(broken)
    assert result.result == "fail" and "ARC-Message-Signature i=2" in result.reason


def test_instance_numbers_are_read_strictly() -> None:
    assert instance_of(Header("ARC-Authentication-Results", " i=3; mx.example; none")) == 3
    assert instance_of(Header("ARC-Authentication-Results", " mx.example; i=3")) is None
    assert instance_of(Header("ARC-Seal", " a=rsa-sha256; i=7; cv=pass")) == 7
    assert instance_of(Header("ARC-Seal", " i=x; cv=pass")) is None
    assert instance_of(Header("ARC-Seal", " i=1; i=2")) is None  # duplicate tag
    raw = b"ARC-Seal: i=one; cv=none\r\n" + our_hop(dkim_signed(), "forwarder.example")
    assert ours(raw).result == "fail"


def test_the_ams_never_signs_arc_headers_or_authentication_results() -> None:
    from arcsupport import NOW, parse_message

    from mailwarden.arc.chain import collect, parse_arc_signature
    from mailwarden.arc.seal import ArcSealer

    raw = our_hop(dkim_signed(), "forwarder.example")
    parsed = parse_message(raw)
    names = ("From", "Subject", "ARC-Seal", "Authentication-Results", "ARC-Authentication-Results")
    new = ArcSealer(names).seal(signing_key("rsa", "relay.example"), collect(parsed.headers), "pass",
                                "mx.t.example; arc=pass", parsed.headers, lambda: iter([parsed.body]), NOW)
    assert parse_arc_signature(new[1]).headers == ("from", "subject")
