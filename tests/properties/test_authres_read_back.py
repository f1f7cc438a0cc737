"""The Authentication-Results header we write reads back, through our own parser, as what we
checked: the authserv-id (an inner mailwarden trusts it by that id), each method's result, and
the SPF identity upstream_spf() takes from it. Values come from clients and signers, so they
are random text, quotes, comments, semicolons and non-ASCII included."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mailwarden.authres.add import header_value
from mailwarden.authres.headers import authserv_id, results
from mailwarden.authres.strip import claims
from mailwarden.core.auth import DkimResult, DkimResults, DkimStatus, SpfResult, SpfScope, SpfStatus
from mailwarden.core.facts import Facts
from mailwarden.core.model import Header
from mailwarden.dmarc.result import Disposition, DmarcResult, DmarcStatus, Policy
from mailwarden.spf.upstream import upstream_spf

HOSTILE = st.lists(st.one_of(
    st.sampled_from([" ", ";", "(", ")", '"', "\\", "=", ".", "@", "\t", "\n", "; spf=pass",
                     " smtp.mailfrom=a@bank.test", " header.d=bank.test", "dmarc=pass", "a@b"]),
    st.characters()), max_size=12).map("".join)
DOMAINS = st.one_of(st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){1,2}\Z"), HOSTILE)
SPF_RESULTS = st.sampled_from(list(SpfStatus))
DKIM_RESULTS = st.sampled_from([s for s in DkimStatus if s != DkimStatus.NONE])
DMARC_RESULTS = st.sampled_from(list(DmarcStatus))

SPF = st.builds(SpfResult, SPF_RESULTS, DOMAINS, st.sampled_from(list(SpfScope)), HOSTILE)
ALGORITHMS = st.sampled_from(["rsa-sha256", "ed25519-sha256"])
DKIM = st.builds(DkimResult, DKIM_RESULTS, DOMAINS, HOSTILE, ALGORITHMS, st.just(2048), HOSTILE,
                 st.text(st.characters(), max_size=12))
DMARC = st.builds(DmarcResult, DMARC_RESULTS, DOMAINS, st.sampled_from([None, Policy.NONE, Policy.REJECT]),
                  st.sampled_from(list(Disposition)), published=st.sampled_from(["", "reject"]))
AUTHSERV = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9-]{1,8}){0,3}\Z")


@given(AUTHSERV, st.none() | SPF, st.lists(DKIM, max_size=3), st.none() | DMARC, HOSTILE, HOSTILE)
# Found by this property: a malformed signature's d= (or a reason) with "@" went out unquoted, so a
# quote in it hid the results after it, and a From domain with "; spf=pass" added a result.
@example("mx.test", None, [DkimResult(DkimStatus.PERMERROR, '"@evil'), DkimResult(DkimStatus.PASS, "x.test")],
         DmarcResult(DmarcStatus.FAIL, "x.test"), "", "")
@example("mx.test", None, [], DmarcResult(DmarcStatus.PASS, "@; spf=pass"), "", "")
@example("mx.test", None, [DkimResult(DkimStatus.FAIL, "x.test", "s", "rsa-sha256", 0, "", '"AAAA'),
                           DkimResult(DkimStatus.PASS, "y.test")], None, "", "")
# Found by the 100,000-example run: a reason (or d=) with "=" and "@" but no address shape went out
# bare, and read back as a property of its own.
@example("0", None, [DkimResult(DkimStatus.PASS, "", "", "rsa-sha256", 2048, "0.0=@")], None, "", "")
@example("0", None, [DkimResult(DkimStatus.FAIL, "0.0=@", "s", "rsa-sha256", 2048, "")], None, "", "")
def test_our_header_reads_back_as_written(aid: str, spf: SpfResult | None, dkim: list[DkimResult],
                                          dmarc: DmarcResult | None, sender: str, helo: str) -> None:
    facts = Facts(*(f for f in (spf, DkimResults(tuple(dkim)) if dkim else None, dmarc) if f is not None))
    value = header_value(aid, facts, sender, helo)
    assert authserv_id(value) == aid.lower()
    assert claims(value, frozenset({aid.lower()}))
    expected = ([("spf", spf.result)] if spf else []) + [("dkim", d.result) for d in dkim] \
        + ([("dmarc", dmarc.result)] if dmarc else [])
    found = results(value)
    assert [(m, r) for m, r, _ in found] == expected
    allowed = {"spf": {"smtp.mailfrom", "smtp.helo"}, "dmarc": {"header.from", "policy.dmarc"},
               "dkim": {"header.d", "header.s", "header.a", "header.b"}}
    for method, _, props in found:  # no property read out of another value (a quoted reason)
        assert set(props) <= allowed[method], (method, props)
    if spf is not None:
        found = upstream_spf([Header("Authentication-Results", value)], frozenset({aid.lower()}))
        assert found is not None and found.result == spf.result and found.identity == spf.identity
