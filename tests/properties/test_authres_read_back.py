"""The Authentication-Results header we write reads back, through our own parser, as what we
checked: the authserv-id (an inner mailwarden trusts it by that id), each method's result, and
the SPF identity upstream_spf() takes from it. Values come from clients and signers, so they
are random text, quotes, comments, semicolons and non-ASCII included."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mailwarden.core.auth import DKIM_FACT, DMARC_FACT, SPF_FACT, DkimResult, SpfResult
from mailwarden.core.model import Header
from mailwarden.dmarc.authres_add import header_value
from mailwarden.dmarc.authres_strip import claims
from mailwarden.dmarc.headers import authserv_id, results
from mailwarden.dmarc.result import DmarcResult
from mailwarden.dmarc.spf_upstream import upstream_spf

HOSTILE = st.lists(st.one_of(
    st.sampled_from([" ", ";", "(", ")", '"', "\\", "=", ".", "@", "\t", "\n", "; spf=pass",
                     " smtp.mailfrom=a@bank.test", " header.d=bank.test", "dmarc=pass", "a@b"]),
    st.characters()), max_size=12).map("".join)
DOMAINS = st.one_of(st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){1,2}\Z"), HOSTILE)
SPF_RESULTS = st.sampled_from(["pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"])
DKIM_RESULTS = st.sampled_from(["pass", "fail", "neutral", "policy", "temperror", "permerror"])
DMARC_RESULTS = st.sampled_from(["pass", "fail", "none", "temperror", "permerror"])

SPF = st.builds(SpfResult, SPF_RESULTS, DOMAINS, st.sampled_from(["mailfrom", "helo"]), HOSTILE)
ALGORITHMS = st.sampled_from(["rsa-sha256", "ed25519-sha256"])
DKIM = st.builds(DkimResult, DKIM_RESULTS, DOMAINS, HOSTILE, ALGORITHMS, st.just(2048), HOSTILE,
                 st.text(st.characters(), max_size=12))
DMARC = st.builds(DmarcResult, DMARC_RESULTS, DOMAINS, st.sampled_from(["", "none", "reject"]),
                  st.sampled_from(["none", "reject"]), published=st.sampled_from(["", "reject"]))
AUTHSERV = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9-]{1,8}){0,3}\Z")


@given(AUTHSERV, st.none() | SPF, st.lists(DKIM, max_size=3), st.none() | DMARC, HOSTILE, HOSTILE)
# Found by this property: a malformed signature's d= (or a reason) with "@" went out unquoted, so a
# quote in it hid the results after it, and a From domain with "; spf=pass" added a result.
@example("mx.test", None, [DkimResult("permerror", '"@evil'), DkimResult("pass", "x.test")],
         DmarcResult("fail", "x.test"), "", "")
@example("mx.test", None, [], DmarcResult("pass", "@; spf=pass"), "", "")
@example("mx.test", None, [DkimResult("fail", "x.test", "s", "rsa-sha256", 0, "", '"AAAA'),
                           DkimResult("pass", "y.test")], None, "", "")
def test_our_header_reads_back_as_written(aid: str, spf: SpfResult | None, dkim: list[DkimResult],
                                          dmarc: DmarcResult | None, sender: str, helo: str) -> None:
    facts: dict[str, object] = {DKIM_FACT: tuple(dkim)}
    if spf is not None:
        facts[SPF_FACT] = spf
    if dmarc is not None:
        facts[DMARC_FACT] = dmarc
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
