"""The verify and sign stages inside the real pipeline, built from TOML by bootstrap."""

from __future__ import annotations

from pathlib import Path

import pytest
from dkimsupport import MSG, NOW, ZONE, delivered, results, safe_keys, sign, sign_config, signing_key
from tests.support import builders

from mailwarden.bootstrap import Runtime, build_runtime
from mailwarden.config import load, parse
from mailwarden.core.auth import DkimResults
from mailwarden.core.decisions import Action, AddHeader
from mailwarden.core.model import Direction, Transaction
from mailwarden.errors import ConfigError


def runtime(text: str = "") -> Runtime:
    return builders.runtime(text, zones=[ZONE], now=NOW)


def dkim_tx(raw: bytes, direction: str = "outbound", mail_from: str = "<alice@example.com>") -> Transaction:
    """Outbound by default: what signing is about."""
    return builders.transaction(raw, direction=Direction(direction), mail_from=mail_from,
                                rcpts=("<bob@example.org>",))


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    return safe_keys(tmp_path / "keys")


def test_outbound_dual_signing_from_one_rule(keydir: Path) -> None:
    rt = runtime(sign_config(keydir))
    tx = dkim_tx(MSG)
    out = rt.pipeline.run(tx)
    sigs = [e for e in out.edits if isinstance(e, AddHeader) and e.name == "DKIM-Signature"]
    assert [e.index for e in sigs] == [0, 0]
    assert all(e.value.startswith(" v=1; ") and "\n\t" in e.value and "\r" not in e.value for e in sigs)
    assert [h.name for h in tx.message.above] == ["DKIM-Signature", "DKIM-Signature"]
    assert "a=rsa-sha256" in tx.message.above[0].value and "a=ed25519-sha256" in tx.message.above[1].value
    assert results(delivered(tx)) == ["pass", "pass"]
    assert out.auth["dkim_sign"]["signed"] == [
        {"domain": "example.com", "selector": "rsa", "algorithm": "rsa-sha256"},
        {"domain": "example.com", "selector": "ed", "algorithm": "ed25519-sha256"},
    ]


def test_signature_covers_edits_of_earlier_stages(keydir: Path, tmp_path: Path) -> None:
    # Outbound header rules delete User-Agent/Received (default pack) and here Subject (our pack)
    # before signing; signing must see the result.
    pack = tmp_path / "pack" / "outbound_header_checks"
    pack.mkdir(parents=True)
    (pack / "90-test.pcre").write_text("/^Subject:/ IGNORE\n")
    raw = MSG.replace(b"X-Unsigned: yes\r\n", b"User-Agent: Mutt\r\nReceived: from laptop\r\n")
    tx = dkim_tx(raw)
    rt = runtime(sign_config(keydir, extra=f'[rules]\ndirs = ["{tmp_path / "pack"}"]\n'))
    rt.pipeline.run(tx)
    out = delivered(tx)
    assert b"Subject:" not in out and b"User-Agent" not in out
    assert results(out) == ["pass", "pass"]
    # Subject was oversigned though absent: adding one afterwards breaks the signatures.
    assert results(out.replace(b"To: Bob", b"Subject: added\r\nTo: Bob")) == ["fail", "fail"]


def test_oversigning_and_header_list(keydir: Path) -> None:
    tx = dkim_tx(MSG)
    runtime(sign_config(keydir)).pipeline.run(tx)
    value = tx.message.above[0].unfolded().replace("\n\t", "")
    h = value.split("h=")[1].split(";")[0].replace("\t", "").replace(" ", "").split(":")
    assert h.count("from") == 2 and h.count("subject") == 2 and h.count("cc") == 1
    assert "x-unsigned" not in h and "received" not in h
    assert "c=relaxed/relaxed" in value


@pytest.mark.parametrize(("from_addr", "signed"), [
    ("alice@example.com", ["rsa", "ed"]),
    ("a@mail.example.com", ["rsa", "ed"]),
    ("a@notexample.com", []),
    ("a@example.net", ["other"]),
])
def test_rules_match_from_domain_and_subdomains(keydir: Path, from_addr: str, signed: list[str]) -> None:
    rules = ('[[dkim.sign]]\nmatch = ["example.com", "*.example.com"]\nkeys = ["rsa", "ed"]\n'
             '[[dkim.sign]]\nmatch = ["example.net"]\nkeys = ["other"]\n')
    tx = dkim_tx(MSG.replace(b"alice@example.com", from_addr.encode()))
    out = runtime(sign_config(keydir, rules=rules)).pipeline.run(tx)
    assert [s["selector"] for s in out.auth["dkim_sign"]["signed"]] == signed


def test_envelope_identity(keydir: Path) -> None:
    rules = '[[dkim.sign]]\nmatch = ["example.net"]\nidentity = "envelope"\nkeys = ["other"]\n'
    rt = runtime(sign_config(keydir, rules=rules))
    tx = dkim_tx(MSG, mail_from="<bounce@example.net>")
    rt.pipeline.run(tx)
    assert len(tx.message.above) == 1 and "d=example.net" in tx.message.above[0].value
    tx = dkim_tx(MSG, mail_from="<bounce@example.com>")
    rt.pipeline.run(tx)
    assert tx.message.above == []


def test_inbound_mail_is_verified_not_signed(keydir: Path) -> None:
    rt = runtime(sign_config(keydir))
    signed = sign(MSG, [signing_key("rsa")])
    tx = dkim_tx(signed.replace(b"quarterly", b"annual"), direction="inbound")
    out = rt.pipeline.run(tx)
    assert not any(isinstance(e, AddHeader) and e.name == "DKIM-Signature" for e in out.edits)
    found = out.facts.get(DkimResults)
    assert found is not None
    (r,) = found.signatures
    assert r.result == "fail" and r.selector == "rsa"
    assert out.auth["dkim"] == [{"result": "fail", "domain": "example.com", "selector": "rsa",
                                 "algorithm": "rsa-sha256", "key_bits": 2048,
                                 "reason": "signature did not verify"}]
    assert out.verdict.action is Action.CONTINUE


def test_outbound_verification_only_when_configured(keydir: Path) -> None:
    signed = sign(MSG, [signing_key("rsa")])
    out = runtime().pipeline.run(dkim_tx(signed))
    assert DkimResults not in out.facts
    out = runtime("[dkim.verify]\nverify_outbound = true\n").pipeline.run(dkim_tx(signed))
    found = out.facts.get(DkimResults)
    assert found is not None and [r.result for r in found.signatures] == ["pass"]


@pytest.mark.parametrize(("setting", "mutate", "action", "code"), [
    ("on_fail", lambda m: m.replace(b"quarterly", b"annual"), Action.REJECT, "550"),
    ("on_none", lambda m: MSG, Action.REJECT, "550"),
    ("on_temperror", lambda m: m.replace(b"s=rsa;", b"s=slow;"), Action.TEMPFAIL, "451"),
    ("on_permerror", lambda m: m.replace(b"s=rsa;", b"s=missing;"), Action.QUARANTINE, None),
])
def test_actions_per_result(setting: str, mutate, action: Action, code: str | None) -> None:  # type: ignore[no-untyped-def]
    value = {Action.REJECT: "reject", Action.TEMPFAIL: "tempfail", Action.QUARANTINE: "quarantine"}[action]
    rt = runtime(f'[dkim.verify]\n{setting} = "{value}"\n')
    good = sign(MSG, [signing_key("rsa")])
    assert rt.pipeline.run(dkim_tx(good, direction="inbound")).verdict.action is Action.CONTINUE
    out = rt.pipeline.run(dkim_tx(mutate(good), direction="inbound"))
    assert out.verdict.action is action
    if code:
        assert out.verdict.reply is not None and out.verdict.reply.code == code


def test_one_passing_signature_is_enough_for_actions() -> None:
    rt = runtime('[dkim.verify]\non_fail = "reject"\n')
    both = sign(sign(MSG, [signing_key("rsa")]), [signing_key("ed")])
    broken_ed = both.replace(b"s=ed;", b"s=missing;")
    assert rt.pipeline.run(dkim_tx(broken_ed, direction="inbound")).verdict.action is Action.CONTINUE


def test_warnings_for_8bit_and_long_lines(keydir: Path) -> None:
    raw = MSG + "caf\u00e9\r\n".encode() + b"x" * 1200 + b"\r\n"
    out = runtime(sign_config(keydir)).pipeline.run(dkim_tx(raw))
    warnings = out.auth["dkim_sign"]["warnings"]
    assert any("8-bit" in w for w in warnings) and any("1200 bytes" in w for w in warnings)
    out = runtime(sign_config(keydir)).pipeline.run(dkim_tx(MSG))
    assert out.auth["dkim_sign"]["warnings"] == []


def test_unsafe_unreadable_and_malformed_keys_stop_the_start(keydir: Path) -> None:
    (keydir / "rsa.key").chmod(0o640)
    with pytest.raises(ConfigError, match=r"dkim.keys.rsa.key_file: .*mode 0640"):
        runtime(sign_config(keydir))
    assert runtime(sign_config(keydir).replace("[dkim.keys.rsa]", "[dkim]\nrequire_safe_keys = false\n"
                                               "[dkim.keys.rsa]"))
    (keydir / "rsa.key").chmod(0o600)
    (keydir / "ed.key").write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    (keydir / "other.key").unlink()
    with pytest.raises(ConfigError) as err:
        runtime(sign_config(keydir))
    assert len(err.value.problems) == 2
    assert "dkim.keys.ed.key_file" in str(err.value) and "dkim.keys.other.key_file" in str(err.value)


def test_unknown_key_name_in_rule_is_a_config_error(keydir: Path) -> None:
    with pytest.raises(ConfigError, match=r"dkim.sign\[0\].keys: no \[dkim.keys.nope\]"):
        parse(sign_config(keydir, rules='[[dkim.sign]]\nmatch = ["example.com"]\nkeys = ["nope"]\n'))


def test_relative_key_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    safe_keys(tmp_path / "conf" / "keys")
    cfg = tmp_path / "conf" / "mailwarden.toml"
    cfg.write_text(sign_config(Path("keys")))
    rt = build_runtime(load(cfg), zones=[str(ZONE)], clock=lambda: NOW)
    assert [s.name for s in rt.pipeline.stages][-1] == "dkim-sign"
