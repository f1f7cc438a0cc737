"""The static zone: RFC 1035 master files answer every query as a recursive resolver would
(CNAME chains, loops, faults along a chain, BIND zones with an SOA), and as the live resolver
reads a real server's answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from tests.dkim.dkimsupport import MSG, key, sign, signing_key
from tests.dmarc.loopdns import LoopbackDns, _rdata

from mailwarden.core.ports import DnsAnswer, Rcode
from mailwarden.errors import ConfigError, DnsTempError
from mailwarden.resolver.live import LiveResolver
from mailwarden.resolver.static import MAX_CNAME_CHAIN, StaticZone

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


CHAINS = """
$TTL 300
a.chain.test.        IN CNAME b.chain.test.
b.chain.test.  60    IN CNAME C.Chain.Test.
c.chain.test.        IN TXT "end"
c.chain.test.  120   IN A 192.0.2.1
to-nx.chain.test.    IN CNAME gone.chain.test.
loop1.chain.test.    IN CNAME loop2.chain.test.
loop2.chain.test.    IN CNAME loop1.chain.test.
self.chain.test.     IN CNAME self.chain.test.
to-slow.chain.test.  IN CNAME slow.chain.test.
slow.chain.test.     IN TXT "never seen"
to-broken.chain.test. IN CNAME x.chain.test.
x.chain.test.        IN CNAME broken.other.test.
broken.other.test.   IN TXT "never seen"
asked-slow.chain.test. IN CNAME c.chain.test.
;! TIMEOUT slow.chain.test. TXT
;! SERVFAIL broken.other.test.
;! TIMEOUT asked-slow.chain.test.
"""


def chain_of(n: int) -> str:
    """n CNAMEs from h0.long.test to h<n>.long.test, which holds the TXT record."""
    lines = [f"h{i}.long.test. 300 IN CNAME h{i + 1}.long.test." for i in range(n)]
    return "\n".join([*lines, f'h{n}.long.test. 300 IN TXT "found"'])


def test_cname_chain_is_followed_to_the_final_records() -> None:
    zone = StaticZone.from_text(CHAINS)
    # The answer is named as asked, with the final name's records and TTL, as the live resolver gives it.
    txt, a = zone.query("A.chain.test.", "TXT"), zone.query("a.chain.test", "A")
    assert txt == DnsAnswer("a.chain.test", "TXT", Rcode.NOERROR, (b"end",), 300)
    assert a == DnsAnswer("a.chain.test", "A", Rcode.NOERROR, ("192.0.2.1",), 120)
    assert zone.txt("b.chain.test") == [b"end"]


def test_a_cname_query_gets_the_cname_itself() -> None:
    zone = StaticZone.from_text(CHAINS)
    assert zone.query("a.chain.test", "CNAME").records == ("b.chain.test.",)
    assert zone.query("c.chain.test", "CNAME").records == ()


def test_cname_to_a_missing_name_or_type() -> None:
    zone = StaticZone.from_text(CHAINS)
    assert zone.query("to-nx.chain.test", "TXT").rcode is Rcode.NXDOMAIN  # RFC 6604: the last name's rcode
    nodata = zone.query("a.chain.test", "MX")
    assert nodata.rcode is Rcode.NOERROR and nodata.records == ()


@pytest.mark.parametrize("name", ["loop1.chain.test", "loop2.chain.test", "self.chain.test"])
def test_cname_loop_is_a_temporary_error(name: str) -> None:
    zone = StaticZone.from_text(CHAINS)
    with pytest.raises(DnsTempError, match="CNAME loop") as err:
        zone.query(name, "TXT")
    assert err.value.name == name
    assert zone.query(name, "CNAME").exists  # asked for itself, a looping CNAME is just a record


def test_chain_is_bounded_at_eight_cnames() -> None:
    assert MAX_CNAME_CHAIN == 8
    assert StaticZone.from_text(chain_of(8)).txt("h0.long.test") == [b"found"]
    assert StaticZone.from_text(chain_of(9)).txt("h1.long.test") == [b"found"]
    with pytest.raises(DnsTempError, match="longer than 8"):
        StaticZone.from_text(chain_of(9)).txt("h0.long.test")


def test_fault_markers_along_the_chain() -> None:
    zone = StaticZone.from_text(CHAINS)
    with pytest.raises(DnsTempError, match=r"timed out at slow\.chain\.test") as err:
        zone.txt("to-slow.chain.test")
    assert err.value.name == "to-slow.chain.test"
    # The marker names TXT: an A query through the same chain reaches the target.
    assert zone.query("to-slow.chain.test", "A").records == ()
    with pytest.raises(DnsTempError, match=r"SERVFAIL at broken\.other\.test"):
        zone.query("to-broken.chain.test", "MX")
    # A marker on the asked name applies before its CNAME is read.
    with pytest.raises(DnsTempError, match=r"^DNS TXT asked-slow\.chain\.test: timed out$"):
        zone.txt("asked-slow.chain.test")


BIND_ZONE = """
$ORIGIN example.net.
$TTL 3600
@       IN SOA  ns1 hostmaster (
                2026120101 ; serial
                7200 3600 1209600 300 )
        IN NS   ns1
        IN NS   ns2.example.org.
        IN MX   10 mx
        IN TXT  "v=spf1 mx -all"
ns1     IN A    192.0.2.53
mx   60 IN A    192.0.2.25
www     IN CNAME @
_dmarc  IN TXT  "v=DMARC1; p=reject"
sel._domainkey IN TXT "v=DKIM1; p=MIIB"

$ORIGIN other.org.
@       IN SOA  ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 300
        IN NS   ns1.example.net.
"""


def test_bind_zone_with_soa_origin_and_relative_names() -> None:
    zone = StaticZone.from_text(BIND_ZONE)
    assert zone.query("example.net", "MX") == DnsAnswer("example.net", "MX", Rcode.NOERROR,
                                                        ("10 mx.example.net.",), 3600)
    assert zone.query("example.net", "NS").records == ("ns1.example.net.", "ns2.example.org.")
    assert zone.query("example.net", "SOA").records == (
        "ns1.example.net. hostmaster.example.net. 2026120101 7200 3600 1209600 300",)
    assert zone.query("mx.example.net", "A") == DnsAnswer("mx.example.net", "A", Rcode.NOERROR,
                                                         ("192.0.2.25",), 60)
    assert zone.txt("www.example.net") == [b"v=spf1 mx -all"]
    assert zone.txt("_dmarc.example.net") == [b"v=DMARC1; p=reject"]
    assert zone.query("other.org", "SOA").exists  # a second zone in the same file
    assert zone.query("absent.example.net", "A").rcode is Rcode.NXDOMAIN


def test_bind_zone_file_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "db.example.net"
    path.write_text(BIND_ZONE)
    assert StaticZone.from_files([path]).txt("sel._domainkey.example.net") == [b"v=DKIM1; p=MIIB"]


def test_names_above_a_name_exist_without_data() -> None:
    """RFC 8020: an empty non-terminal is NOERROR with no records, never NXDOMAIN."""
    zone = StaticZone.from_text(ZONE)
    for name in ("_domainkey.example.com", "example.com", "com"):
        answer = zone.query(name, "TXT")
        assert answer.rcode is Rcode.NOERROR and answer.records == (), name
    assert zone.query("x.sel._domainkey.example.com", "TXT").rcode is Rcode.NXDOMAIN


@pytest.mark.parametrize("text, problem", [
    ('a.test. IN CNAME b.test.\na.test. IN TXT "x"\n', "CNAME and other data"),
    ('a.test. IN TXT "x"\na.test. IN CNAME b.test.\n', "CNAME and other data"),
    ("a.test. IN CNAME b.test.\na.test. IN CNAME c.test.\n", "more than one CNAME"),
])
def test_cname_beside_other_data_is_refused_as_bind_does(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        StaticZone.from_text("$TTL 60\n" + text)
    assert err.value.problems == [f"dns.zones: (text): a.test: {problem}"]


def test_cname_beside_other_data_across_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.zone").write_text('a.test. 60 IN TXT "x"\n')
    (tmp_path / "b.zone").write_text("a.test. 60 IN CNAME b.test.\n")
    with pytest.raises(ConfigError, match=r"b\.zone: a\.test: CNAME and other data \(TXT\)"):
        StaticZone.from_files([tmp_path / "a.zone", tmp_path / "b.zone"])


def test_syntax_error_names_file_and_line_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.zone"
    path.write_text('$TTL 60\nok.test. IN TXT "x"\nbad.test. IN TXT ( "x"\n')
    with pytest.raises(ConfigError) as err:
        StaticZone.from_files([path])
    assert err.value.problems == [f"dns.zones: {path}:4: unbalanced parentheses"]


def test_queries_are_recorded_only_when_asked() -> None:
    zone = StaticZone.from_text(CHAINS)
    for _ in range(3):
        zone.txt("a.chain.test")
    with pytest.raises(AttributeError, match="record_queries=True"):
        _ = zone.queries
    recording = StaticZone.from_text(CHAINS, record_queries=True)
    recording.txt("a.chain.test")
    recording.query("to-nx.chain.test", "A")
    # What a stub resolver asks: the CNAMEs are followed by the "recursive resolver", unseen.
    assert recording.queries == [("a.chain.test", "TXT"), ("to-nx.chain.test", "A")]


class ChainingDns(LoopbackDns):
    """A server that answers as a recursive resolver does: the CNAMEs followed, then the final
    records, with the final name's rcode; SERVFAIL where the zone has a fault, a loop or a
    chain too long."""

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        q = query.question[0]
        try:
            chain, ans = self.zone.chase(q.name.to_text(), dns.rdatatype.to_text(q.rdtype))
        except DnsTempError:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        for owner, target, ttl in chain:
            response.answer.append(dns.rrset.from_text(owner + ".", ttl, "IN", "CNAME", target + "."))
        if not ans.exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif ans.records:
            final = dns.name.from_text((chain[-1][1] if chain else ans.name) + ".")
            rrset = dns.rrset.RRset(final, dns.rdataclass.IN, q.rdtype)
            for rec in ans.records:
                rrset.add(_rdata(q.rdtype, rec), ttl=ans.ttl)
            response.answer.append(rrset)
        return response.to_wire(max_size=65535)


@pytest.fixture
def chaining_dns() -> Iterator[ChainingDns]:
    """Port 53 of a loopback address (resolv.conf knows no port): root only."""
    try:
        server = ChainingDns(StaticZone.from_text(CHAINS + chain_of(9) + WILDCARDS))
    except PermissionError:
        pytest.skip("port 53 needs root")
    yield server
    server.close()


@pytest.mark.root
@pytest.mark.parametrize("name, rdtype", [
    ("a.chain.test", "TXT"), ("a.chain.test", "A"), ("b.chain.test", "TXT"), ("a.chain.test", "MX"),
    ("a.chain.test", "CNAME"), ("to-nx.chain.test", "TXT"), ("c.chain.test", "TXT"),
    ("loop1.chain.test", "TXT"), ("self.chain.test", "A"), ("to-slow.chain.test", "TXT"),
    ("to-slow.chain.test", "A"), ("to-broken.chain.test", "MX"), ("h1.long.test", "TXT"),
    ("h0.long.test", "TXT"), ("any.wild.test", "TXT"), ("mail.alias.test", "TXT"),
])
def test_live_resolver_reads_a_chained_answer_as_the_zone_gives_it(
    chaining_dns: ChainingDns, name: str, rdtype: str
) -> None:
    live = LiveResolver(timeout=10.0, nameservers=[chaining_dns.address])  # generous: a loaded CI host
    try:
        expected: DnsAnswer | str = chaining_dns.zone.query(name, rdtype)
    except DnsTempError:
        expected = "temporary error"
    try:
        got: DnsAnswer | str = live.query(name, rdtype)
    except DnsTempError:
        got = "temporary error"
    assert got == expected


def test_dkim_key_and_dmarc_record_published_as_cnames_through_dry_run(tmp_path: Path) -> None:
    """ESP-managed selectors and hosted DMARC records: both are CNAMEs to another domain."""
    (tmp_path / "signed.eml").write_bytes(sign(MSG, [signing_key("rsa", selector="esp1")]))
    record = key("rsa").public_record()
    strings = " ".join(f'"{record[i:i + 200]}"' for i in range(0, len(record), 200))
    (tmp_path / "dns.zone").write_text(f"""$TTL 300
esp1._domainkey.example.com.        IN CNAME esp1.example-com.dkim.esp.test.
esp1.example-com.dkim.esp.test.     IN TXT {strings}
_dmarc.example.com.                 IN CNAME example.com._dmarc.hosted.test.
example.com._dmarc.hosted.test.     IN CNAME policy.hosted.test.
policy.hosted.test.                 IN TXT "v=DMARC1; p=reject"
example.com.                        IN TXT "v=spf1 -all"
""")
    proc = subprocess.run(
        [sys.executable, "-m", "mailwarden", "dry-run", "--json", "--zone", str(tmp_path / "dns.zone"),
         "--client-ip", "198.51.100.7", "--mail-from", "alice@example.com", str(tmp_path / "signed.eml")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    auth = json.loads(proc.stdout)["auth"]
    assert [(d["result"], d["selector"]) for d in auth["dkim"]] == [("pass", "esp1")]
    assert auth["spf"]["result"] == "fail"
    dmarc = auth["dmarc"]
    assert (dmarc["result"], dmarc["policy"], dmarc["alignment"]["dkim"]) == ("pass", "reject", "pass")


WILDCARDS = """
$TTL 300
*.wild.test.        IN TXT "v=spf1 -all"
*.wild.test.        IN MX 0 .
exists.wild.test.   IN A 192.0.2.9
deep.exists.wild.test. IN A 192.0.2.10
*.alias.test.       IN CNAME target.test.
target.test.        IN TXT "via a wildcard CNAME"
"""


def test_wildcards_answer_for_absent_names_only() -> None:
    """RFC 4592 section 2.2: a wildcard matches names (of any depth) below its parent that do not
    exist; an existing name, or one with names below it, is answered by itself."""
    zone = StaticZone.from_text(WILDCARDS)
    assert zone.query("anything.wild.test", "TXT") == DnsAnswer("anything.wild.test", "TXT", Rcode.NOERROR,
                                                                (b"v=spf1 -all",), 300)
    assert zone.query("a.b.c.wild.test", "MX").records == ("0 .",)
    assert zone.query("anything.wild.test", "A").records == ()  # NODATA from the wildcard
    assert zone.query("exists.wild.test", "TXT").records == ()  # exists: no synthesis
    assert zone.query("x.deep.exists.wild.test", "TXT").rcode is Rcode.NXDOMAIN  # closest encloser has no *
    assert zone.query("wild.test", "TXT").records == ()
    assert zone.txt("mail.alias.test") == [b"via a wildcard CNAME"]
    assert zone.query("other.test", "TXT").rcode is Rcode.NXDOMAIN
