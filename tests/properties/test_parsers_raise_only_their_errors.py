"""Parsers of attacker-controlled text raise nothing but their own errors, whatever the input.

Random input is built from each grammar's own pieces (tags, separators, quoting, comments,
folding) mixed with arbitrary bytes, so that it reaches deep into the parser rather than
failing at the first character.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mailwarden.authres.headers import authserv_id, received_spf, results, strip_comments
from mailwarden.authres.strip import forged_deletes
from mailwarden.core.auth import SpfScope
from mailwarden.core.model import Header
from mailwarden.dkim.keys import KeyRecordError, parse_key_record
from mailwarden.dkim.tags import TagError, parse_signature, parse_tags
from mailwarden.dmarc import record as dmarc_record
from mailwarden.resolver.static import StaticZone
from mailwarden.rules.matcher import compile_pattern
from mailwarden.rules.table import Kind, parse_table
from mailwarden.spf.query import RESULTS, check_spf
from mailwarden.spf.upstream import upstream_spf


def pieces(*grammar: bytes) -> st.SearchStrategy[bytes]:
    """Concatenations of grammar pieces and short random bytes."""
    piece = st.one_of(st.sampled_from(grammar), st.binary(max_size=4))
    return st.lists(piece, max_size=24).map(b"".join)


def text(strategy: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    """Header values as pymilter hands them over: UTF-8 with surrogate escapes."""
    return strategy.map(lambda b: b.decode("utf-8", "surrogateescape"))


# --- header_checks tables -------------------------------------------------------------------

REGEX = pieces(
    b"^", b"$", b".", b"a", b"Subject:", b"(", b")", b"(?:", b"(?=", b"(?<=", b"(?<!", b"(?P<n>",
    b"(?i)", b"(?#c)", b"[", b"]", b"[^", b"[a-z]", b"[[:alpha:]]", b"[[:upper:]]", b"[=a=]",
    b"[.a.]", b"[]a]", b"{", b"}", b"{1,", b"{,3}", b"{2}", b"{70000}", b"*", b"+", b"?", b"*?",
    b"++", b"|", b"\\", b"\\d", b"\\w", b"\\b", b"\\h", b"\\R", b"\\N", b"\\k<n>",
    b"\\p{L}", b"\\P{Lu}", b"\\1", b"\\2", b"\\Q", b"\\E", b"\\x41", b"\\x{100}", b"\\0",
    b"\\c", b"\\/", b" ", b"\xff",
)
FLAGS = st.text(st.sampled_from("imsxAEUX?"), max_size=3).map(str.encode)
ACTIONS = st.sampled_from([
    b"REJECT", b"REJECT 5.7.1 no $1", b"WARN $1", b"PREPEND X-A: $2", b"REPLACE Subject: ${1}",
    b"REPLACE Subject:", b"$", b"${", b"$(1)", b"DISCARD", b"HOLD", b"STRIP", b"IGNORE", b"INFO x",
    b"FILTER x:y", b"BCC a@b", b"BCC", b"REDIRECT a@b", b"OK", b"DUNNO", b"550 no", b"", b"reject",
])


@st.composite
def table_lines(draw: st.DrawFn) -> bytes:
    delim = draw(st.sampled_from([b"/", b"/", b"/", b"#", b"!"]))
    rule = (draw(st.sampled_from([b"", b"!"])) + delim + draw(REGEX) + delim + draw(FLAGS))
    if draw(st.integers(0, 5)) == 0:  # the obsolete second pattern of regexp tables
        rule += b"!" + delim + draw(REGEX) + delim
    kind = draw(st.sampled_from(["rule"] * 6 + ["if", "endif", "comment", "fold", "junk"]))
    if kind == "rule":
        return rule + draw(st.sampled_from([b" ", b"\t", b""])) + draw(ACTIONS)
    if kind == "if":
        return draw(st.sampled_from([b"if ", b"IF ", b"if"])) + rule + draw(st.sampled_from([b"", b" junk"]))
    if kind == "endif":
        return draw(st.sampled_from([b"endif", b"ENDIF", b"endif x", b" endif"]))
    if kind == "comment":
        return draw(st.sampled_from([b"#", b"  # indented", b""]))
    if kind == "fold":
        return draw(st.sampled_from([b" ", b"\t"])) + draw(ACTIONS)
    return draw(st.binary(max_size=12))


TABLE = st.lists(table_lines(), max_size=12).map(lambda lines: b"\n".join(lines))


@given(TABLE, st.sampled_from(list(Kind)))
def test_rule_table_parser_reports_problems_instead_of_raising(data: bytes, kind: Kind) -> None:
    table = parse_table("fuzz." + kind.value, data, kind, compile_pattern)
    assert all(p.line >= 1 for p in table.problems)


# --- DKIM -----------------------------------------------------------------------------------

TAGS = pieces(
    b"v=1", b"v=DKIM1", b"a=rsa-sha256", b"a=ed25519-sha256", b"a=rsa-sha1", b"c=relaxed/simple",
    b"c=simple", b"c=relaxed/", b"d=example.com", b"d=", b"s=sel", b"s=a.b", b"h=From:To",
    b"h=from", b"bh=", b"b=", b"AAAA", b"b=dGVzdA==", b"i=@example.com", b"i=a@sub.example.com",
    b"l=10", b"l=-1", b"l=99999999999999999999", b"t=1", b"x=0", b"x=1", b"q=dns/txt", b"k=rsa",
    b"k=ed25519", b"p=", b"p=MCowBQYDK2VwAyEA", b"t=y:s", b"s=email", b";", b";", b"=", b" ",
    b"\r\n\t", b"\xc3\xa9", b"\xff",
)


@given(TAGS, st.booleans())
def test_dkim_tag_lists_raise_only_tag_errors(value: bytes, lenient: bool) -> None:
    try:
        tags = parse_tags(value, lenient)
    except TagError:
        assert not lenient
        return
    assert all(isinstance(v, bytes) for v in tags.values())


@given(TAGS)
def test_dkim_signatures_raise_only_tag_errors(value: bytes) -> None:
    try:
        parse_signature(value)
    except TagError:
        pass


@given(TAGS)
def test_dkim_key_records_raise_only_key_record_errors(value: bytes) -> None:
    try:
        parse_key_record(value)
    except KeyRecordError:
        pass


# --- DMARC ----------------------------------------------------------------------------------

DMARC = pieces(
    b"v=DMARC1", b"v=DMARC1;", b"v = DMARC1 ;", b"p=reject", b"p=none", b"p=quarantine", b"p=",
    b"sp=reject", b"np=none", b"adkim=s", b"aspf=r", b"pct=50", b"pct=-1", b"pct=1e9",
    b"pct=99999999999999999999999", b"psd=y", b"t=y", b"rua=mailto:a@b", b"rua=", b",", b"ruf=x",
    b"fo=1", b"ri=86400", b";", b";", b"=", b" ", b"\t", b"\xc3\xa9", b"\xff",
)


@given(DMARC, st.booleans())
def test_dmarc_records_raise_only_record_errors(value: bytes, bis: bool) -> None:
    is_record = dmarc_record.is_dmarc(value)
    try:
        record = dmarc_record.parse(value, bis)
    except dmarc_record.RecordError:
        return
    assert is_record and record.p in dmarc_record.POLICIES and 0 <= record.pct <= 100


# --- SPF, through our resolver over random records -------------------------------------------

SPF_TERMS = st.sampled_from([
    "v=spf1", "v=spf1", "-all", "~all", "?all", "+all", "all", "a", "mx", "ptr", "a:x.test",
    "mx:x.test/24", "a/33", "a//129", "ip4:192.0.2.0/24", "ip4:192.0.2.1", "ip4:1.2.3.4/40",
    "ip6:2001:db8::/32", "ip6:::1/129", "include:x.test", "include:s.test", "include:loop.test",
    "include:", "exists:%{i}.x.test", "exists:%{l1r-}.%{d2}", "%{z}", "redirect=x.test",
    "redirect=s.test", "exp=e.test", "exp=", "a:%{", "mx:%{ir}.x.test", "ip4:", "-", "=",
    "unknown=mod", "v=spf1 v=spf1", "\u00e9", "x" * 70, "a:" + "l." * 130 + "test",
    "a:" + "\u00e9" * 64 + ".test", "mx:xn--a.test", "include:\u00e9.test",
])
SPF = st.lists(SPF_TERMS, max_size=8).map(" ".join)
ZONE_NAMES = ["s.test", "x.test", "loop.test", "e.test"]


@st.composite
def spf_zones(draw: st.DrawFn) -> StaticZone:
    lines = ["$TTL 60", "x.test. IN A 192.0.2.7", "x.test. IN MX 10 mx.x.test.",
             "mx.x.test. IN AAAA 2001:db8::25", "loop.test. IN TXT \"v=spf1 include:loop.test -all\"",
             "1.2.0.192.in-addr.arpa. IN PTR x.test."]
    for name in draw(st.lists(st.sampled_from(ZONE_NAMES), max_size=4)):
        record = draw(SPF)
        # Character-strings of at most 255 bytes: 80 characters of at most 3 bytes each.
        strings = " ".join('"' + record[i:i + 80] + '"' for i in range(0, len(record), 80)) or '""'
        lines.append(f"{name}. IN TXT {strings}")
    if draw(st.booleans()):
        fault = draw(st.sampled_from(["TIMEOUT", "SERVFAIL"]))
        lines.append(f";! {fault} {draw(st.sampled_from(ZONE_NAMES))}.")
    return StaticZone.from_text("\n".join(lines))


IPS = st.sampled_from(["192.0.2.1", "192.0.2.7", "2001:db8::25", "::ffff:192.0.2.7", "1.2.3.4",
                       "", "not-an-ip", "999.1.1.1"])
SENDERS = st.sampled_from(["a@s.test", "a@x.test", "a@loop.test", "s.test", "", "@", "a@",
                           "a@\u00e9.test", "a@" + "x" * 70 + ".test", "a@-.test",
                           "a@" + "\u00e9" * 64 + ".test"])
HELOS = st.sampled_from(["s.test", "x.test", "[192.0.2.1]", "", "unknown", "\u00e9.test"])


@given(spf_zones(), IPS, SENDERS, HELOS, st.sampled_from(list(SpfScope)))
# Found by the long run: no client address (pyspf raised AttributeError).
@example(StaticZone.from_text('x.test. 60 IN TXT "v=spf1 a include:x.test -all"'), "", "a@x.test", "",
         SpfScope.MAILFROM)
def test_spf_over_random_records_gives_a_result(zone: StaticZone, ip: str, sender: str, helo: str,
                                                identity: SpfScope) -> None:
    result = check_spf(zone, ip, sender, helo, identity)
    assert result.result in RESULTS


# --- Authentication-Results and Received-SPF ---------------------------------------------------

AR = pieces(
    b"mx.test", b"mx.test;", b'"mx.test"', b" 1", b"/ 1", b"spf=pass", b"spf = fail", b"dkim=pass",
    b"dmarc=fail", b"none", b";", b";", b" smtp.mailfrom=a@b.test", b" smtp.helo=h.test",
    b" header.d=x", b' header.b="q;uo\\"ted"', b" (comment", b")", b"(a (nested) c)", b'"', b"\\",
    b"\\(", b"\n\t", b"\r\n ", b"receiver=mx.test", b"identity=helo", b"envelope-from=<a@b>",
    b"helo=h", b"pass", b"softfail", b"=", b"\xc3\xa9", b"\xff",
)


@given(text(AR))
def test_authentication_results_parsing_never_raises(value: str) -> None:
    found = authserv_id(value)
    assert found is None or (found and found == found.lower())
    for method, result, props in results(value):
        assert method == method.lower() and result == result.lower() and isinstance(props, dict)
    parsed = received_spf(value)
    assert parsed is None or isinstance(parsed[1], dict)
    strip_comments(value)


@given(st.lists(st.tuples(st.sampled_from(["Authentication-Results", "Received-SPF", "X-Other",
                                           "authentication-results"]), text(AR)), max_size=5))
def test_upstream_results_and_forged_headers_never_raise(pairs: list[tuple[str, str]]) -> None:
    headers = [Header(name, value) for name, value in pairs]
    found = upstream_spf(headers, frozenset({"mx.test"}))
    assert found is None or found.result in RESULTS
    deletes = forged_deletes(headers, frozenset({"mx.test"}))
    assert len(deletes) <= sum(1 for h in headers if h.name.lower() == "authentication-results")
