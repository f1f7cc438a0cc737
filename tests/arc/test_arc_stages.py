"""The ARC stages in the pipeline: the A-R clause, the trusted-sealer DMARC override, sealing."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from arcsupport import (
    ZONE,
    dkim_signed,
    dkimpy_hop,
    make_tx,
    our_hop,
    ours,
    runtime,
    theirs,
)

from mailwarden.core.decisions import Action, AddHeader
from mailwarden.errors import ConfigError

FOOTER = (b"attached.\r\n", b"attached.\r\n-- \r\nlist footer\r\n")


def footer(raw: bytes) -> bytes:
    return raw.replace(*FOOTER, 1)


def listed(first_hop: str | None = None) -> bytes:
    """The author's DKIM-signed message as a list delivers it: footer added, sealed."""
    kw = {"results": first_hop} if first_hop is not None else {}
    return our_hop(dkim_signed(), "list.example.org", modify=footer, **kw)


def authres(tx_edits: list[object]) -> str:
    found = [e.value for e in tx_edits if isinstance(e, AddHeader) and e.name == "Authentication-Results"]
    assert len(found) == 1
    return " ".join(found[0].split())


def test_authres_has_the_arc_clause_and_dry_run_data_has_the_chain() -> None:
    rt = runtime()
    raw = dkimpy_hop(our_hop(dkim_signed(), "forwarder.example"), "relay.example", modify=footer)
    tx = make_tx(raw)
    outcome = rt.pipeline.run(tx)
    ar = authres(outcome.edits)
    assert "arc=pass header.oldest-pass=2 smtp.remote-ip=198.51.100.7" in ar, ar
    chain = outcome.auth["arc"]["chain"]
    assert [(c["i"], c["d"], c["cv"], c["result"]) for c in chain] == [
        (1, "forwarder.example", "none", "pass"), (2, "relay.example", "pass", "pass")]
    assert outcome.auth["arc"]["oldest_pass"] == 2


def test_no_chain_is_arc_none_in_the_data_and_no_clause() -> None:
    outcome = runtime().pipeline.run(make_tx(dkim_signed()))
    assert outcome.auth["arc"] == {"result": "none", "oldest_pass": None, "reason": None, "chain": []}
    assert "; arc=" not in authres(outcome.edits)


def test_a_forwarded_message_fails_dmarc_and_is_rejected_without_trusted_sealers() -> None:
    outcome = runtime().pipeline.run(make_tx(listed()))
    assert outcome.auth["dmarc"]["result"] == "fail"
    assert outcome.verdict.action is Action.REJECT
    assert outcome.auth["arc"]["result"] == "pass"  # reported, never acted on


def test_a_trusted_sealer_rescues_dmarc() -> None:
    rt = runtime('[arc]\ntrusted_sealers = ["list.example.org"]\n')
    outcome = rt.pipeline.run(make_tx(listed()))
    assert outcome.verdict.action is Action.CONTINUE, outcome.verdict
    dmarc = outcome.auth["dmarc"]
    assert (dmarc["result"], dmarc["disposition"], dmarc["override"]) == ("fail", "none", "arc")
    ar = authres(outcome.edits)
    assert "dmarc=fail" in ar and "policy.override=arc" in ar and "arc=pass" in ar, ar
    assert any("rescued by a trusted ARC chain" in line for line in outcome.log)


@pytest.mark.parametrize("first_hop", [
    "dkim=pass header.d=sender.example",
    "spf=pass smtp.mailfrom=alice@sender.example",
    "dkim=pass header.d=mail.sender.example",  # relaxed alignment
    "dmarc=pass header.from=sender.example",
])
def test_first_hop_evidence_that_rescues(first_hop: str) -> None:
    rt = runtime('[arc]\ntrusted_sealers = ["list.example.org"]\n')
    outcome = rt.pipeline.run(make_tx(listed(first_hop)))
    assert outcome.auth["dmarc"]["override"] == "arc", outcome.notes


@pytest.mark.parametrize("first_hop", [
    "dkim=pass header.d=list.example.org",  # not aligned with the author
    "spf=fail smtp.mailfrom=alice@sender.example",
    "dkim=fail header.d=sender.example",
    "dmarc=pass header.from=other.example",
    "none",
])
def test_first_hop_evidence_that_does_not(first_hop: str) -> None:
    rt = runtime('[arc]\ntrusted_sealers = ["list.example.org"]\n')
    outcome = rt.pipeline.run(make_tx(listed(first_hop)))
    assert outcome.verdict.action is Action.REJECT
    assert any("arc-override: not applied" in n for n in outcome.notes)


def test_untrusted_sealer_or_broken_chain_cannot_rescue() -> None:
    rt = runtime('[arc]\ntrusted_sealers = ["forwarder.example"]\n')
    assert rt.pipeline.run(make_tx(listed())).verdict.action is Action.REJECT
    rt = runtime('[arc]\ntrusted_sealers = ["list.example.org"]\n')
    broken = listed().replace(b"list footer", b"LIST FOOTER")
    outcome = rt.pipeline.run(make_tx(broken))
    assert outcome.auth["arc"]["result"] == "fail"
    assert outcome.verdict.action is Action.REJECT


SEAL = '[[arc.seal]]\nkey = "{key}"\ndirection = "{direction}"\n'


def sealed(raw: bytes, direction: str = "inbound", key: str = "rsa", extra: str = "", **tx: object) -> bytes:
    rt = runtime(SEAL.format(key=key, direction=direction) + extra, keydir=Path("."))
    t = make_tx(raw, direction=direction if direction != "all" else "inbound", **tx)  # type: ignore[arg-type]
    outcome = rt.pipeline.run(t)
    assert outcome.auth["arc_seal"]["sealed"], outcome.auth
    return t.message.to_bytes()


def test_we_seal_as_hop_1_and_dkimpy_verifies() -> None:
    out = sealed(dkim_signed())
    assert out.startswith(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=list.example.org")
    names = [line.split(b":")[0] for line in out.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert names[:5] == [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results",
                         b"Authentication-Results", b"Received"]
    assert theirs(out) == "pass" and ours(out).result == "pass"
    # The AAR carries our A-R results under i=1.
    aar = out.split(b"ARC-Authentication-Results:")[1].split(b"\r\nAuthentication-Results:")[0]
    ar = out.split(b"\r\nAuthentication-Results:")[1].split(b"\r\nReceived:")[0]
    assert b" ".join(aar.split()) == b"i=1; " + b" ".join(ar.split())


def test_we_seal_as_middle_and_last_hop() -> None:
    first = dkimpy_hop(dkim_signed(), "forwarder.example")
    middle = sealed(first)
    assert b"ARC-Seal: i=2; a=rsa-sha256; cv=pass" in middle
    assert theirs(middle) == "pass"
    after = dkimpy_hop(middle, "relay.example", modify=footer)  # the next hop changes the body
    assert theirs(after) == ours(after).result == "pass"
    last = sealed(dkimpy_hop(dkimpy_hop(dkim_signed(), "forwarder.example"), "relay.example"))
    assert b"ARC-Seal: i=3; a=rsa-sha256; cv=pass" in last
    assert theirs(last) == "pass" and ours(last).result == "pass"


def test_a_broken_incoming_chain_is_sealed_cv_fail() -> None:
    broken = footer(dkimpy_hop(dkim_signed(), "forwarder.example"))
    out = sealed(broken, extra='[dmarc]\nmode = "report"\n')  # else DMARC rejects it, unsealed
    assert b"ARC-Seal: i=2; a=rsa-sha256; cv=fail" in out
    assert theirs(out) == "fail" and ours(out).result == "fail"


def test_ed25519_seal_verifies_with_us() -> None:
    out = sealed(dkim_signed(), key="ed")
    assert b"a=ed25519-sha256; cv=none" in out and ours(out).result == "pass"


def test_outbound_sealing_after_dkim_signing_and_recipient_domains() -> None:
    sign = ('[[dkim.sign]]\nmatch = ["sender.example"]\nkeys = ["rsa"]\n'
            '[dkim.keys.rsa2]\ndomain = "sender.example"\nselector = "rsa"\n'
            f'key_file = "{Path(ZONE).parent.parent / "dkim" / "rsa.key"}"\n')
    sign = sign.replace('keys = ["rsa"]', 'keys = ["rsa2"]')
    out = sealed(dkim_signed(b"From: Alice <alice@sender.example>\r\nSubject: x\r\n\r\nhi\r\n"),
                 direction="outbound", extra=sign)
    names = [line.split(b":")[0] for line in out.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert names[:4] == [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results",
                         b"DKIM-Signature"]
    assert theirs(out) == "pass"
    rt = runtime('[[arc.seal]]\nkey = "rsa"\ndirection = "all"\nrecipient_domains = ["lists.example"]\n',
                 keydir=Path("."))
    miss = rt.pipeline.run(make_tx(dkim_signed()))
    assert "arc_seal" not in miss.auth
    hit = rt.pipeline.run(make_tx(dkim_signed(), rcpts=("<x@sub.lists.example>",)))
    assert hit.auth["arc_seal"]["sealed"]


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        runtime('[[arc.seal]]\nkey = "nope"\n', keydir=Path("."))
    assert "arc.seal[0].key: no [dkim.keys.nope] table" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        runtime("[arc]\nmax_instances = 51\n")
    assert "arc.max_instances" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        runtime('[arc]\ntrusted_sealers = ["not a domain"]\n')
    assert "arc.trusted_sealers[0]" in str(exc.value)


def test_dry_run_json_shows_the_chain(tmp_path: Path) -> None:
    (tmp_path / "m.eml").write_bytes(listed())
    (tmp_path / "c.toml").write_text('[policy]\nauthserv_id = "mx.rcpt.example"\n'
                                     '[arc]\ntrusted_sealers = ["list.example.org"]\n')
    proc = subprocess.run([sys.executable, "-m", "mailwarden", "dry-run", "--json", "--config",
                           str(tmp_path / "c.toml"), "--zone", str(ZONE), "--client-ip", "198.51.100.7",
                           "--mail-from", "list-bounces@list.example.org", "--rcpt", "bob@rcpt.example",
                           str(tmp_path / "m.eml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[0])
    arc = report["auth"]["arc"]
    assert arc["result"] == "pass" and arc["oldest_pass"] == 0
    assert arc["chain"][0]["d"] == "list.example.org" and arc["chain"][0]["cv"] == "none"
    assert report["auth"]["dmarc"]["override"] == "arc" and report["verdict"] != "reject"


def test_list_host_two_passes_then_a_trusting_receiver() -> None:
    # The list host's MX checks the author's mail (inbound, not sealed: the rule is outbound)...
    host = runtime(SEAL.format(key="rsa", direction="outbound"), keydir=Path("."))
    first = make_tx(dkim_signed(), ip="192.0.2.1", mail_from="<alice@sender.example>")
    assert "arc_seal" not in host.pipeline.run(first).auth
    received = first.message.to_bytes()
    assert b"dmarc=pass" in received
    # ...the list software adds its footer and re-sends through the host (outbound): the set
    # vouches for what the MX found, not for this pass's view of the changed message.
    second = make_tx(footer(received), ip="127.0.0.1", direction="outbound")
    outcome = host.pipeline.run(second)
    assert outcome.auth["arc_seal"] == {"sealed": True, "i": 1, "cv": "none", "d": "list.example.org",
                                        "s": "rsa", "algorithm": "rsa-sha256"}
    sent = second.message.to_bytes()
    aar = sent.split(b"ARC-Authentication-Results: ")[1].split(b"\r\n")[0]
    assert aar.startswith(b"i=1; mx.rcpt.example;") and b"dkim=pass" in sent.split(b"ARC-Seal")[1]
    assert theirs(sent) == ours(sent).result == "pass"
    # The final receiver: DKIM broke, DMARC fails, the trusted list's chain rescues it.
    rt = runtime('[arc]\ntrusted_sealers = ["list.example.org"]\n')
    final = rt.pipeline.run(make_tx(sent))
    assert final.auth["dkim"][0]["result"] == "fail"
    assert final.auth["dmarc"]["override"] == "arc" and final.verdict.action is Action.CONTINUE


def test_a_sasl_users_own_authres_claims_are_not_sealed() -> None:
    host = runtime(SEAL.format(key="rsa", direction="outbound"), keydir=Path("."))
    forged = (b"Authentication-Results: mx.rcpt.example; dkim=pass header.d=bank.example\r\n"
              + dkim_signed())
    local = make_tx(forged, ip="127.0.0.1", direction="outbound")
    host.pipeline.run(local)
    assert b"i=1; mx.rcpt.example; dkim=pass header.d=bank.example" in local.message.to_bytes()
    user = make_tx(forged, ip="192.0.2.50", direction="outbound")
    user = replace(user, connection=replace(user.connection, macros={"{auth_authen}": "mallory"}))
    host.pipeline.run(user)
    sealed = user.message.to_bytes()
    aar = sealed.split(b"ARC-Authentication-Results: ")[1].split(b"\r\n")[0]
    assert aar == b"i=1; mx.rcpt.example; none"  # what this pass checked: nothing


def test_the_override_is_a_local_policy_override_for_reports() -> None:
    from mailwarden.dmarc.result import DmarcResult, Override

    rt = runtime('[arc]\ntrusted_sealers = ["list.example.org"]\n')
    result = rt.pipeline.run(make_tx(listed())).facts.get(DmarcResult)
    assert result is not None and result.override is Override.ARC
    assert result.override.report_type == "local_policy"
    assert result.reason == ("arc=pass, sealed by list.example.org, "
                             "first hop dkim=pass header.d=sender.example")


def test_first_hop_results_that_cannot_be_parsed_show_no_pass() -> None:
    from mailwarden.arc.override import first_hop_passes

    same = lambda d: d  # noqa: E731
    assert first_hop_passes("i=1; mx.example; dkim=pass header.d=sender.example", "sender.example", same)
    for broken in ("i=1; mx.example; dkim=pass (unclosed header.d=sender.example", "i=1", "i=1; ;;; =",
                   "i=1; mx.example; dkim=pass header.d=\"sender.example"):
        assert first_hop_passes(broken, "sender.example", same) == "", broken


def test_aggregate_reports_show_the_override_as_local_policy_arc() -> None:
    from mailwarden.reports.aggregate import override_reason

    assert override_reason("arc") == ("local_policy", "arc")
