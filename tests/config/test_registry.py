"""The stage registry: the order comes from what stages need, and a config that cannot work is refused."""

from __future__ import annotations

import graphlib
from pathlib import Path

import pytest

from mailwarden.bootstrap import REGISTRY, build_env, build_stages, explain
from mailwarden.cli import main
from mailwarden.config import parse
from mailwarden.core.pipeline import Phase, Stage
from mailwarden.core.registry import EVERYTHING, StageSpec, resolve
from mailwarden.errors import ConfigError


def names(text: str = "") -> list[str]:
    return [s.name for s in build_stages(build_env(parse(text), rules_dir=None))]


def test_default_pipeline_order() -> None:
    assert names() == ["spf", "hopcount", "header_checks", "outbound_header_checks", "body_checks",
                       "dkim-verify", "arc-verify", "authres-strip", "dmarc", "authres", "dmarc-enforce"]


def test_dmarc_without_dkim_verification_is_refused_with_the_key_path() -> None:
    with pytest.raises(ConfigError) as err:
        build_stages(build_env(parse("[dkim.verify]\nenabled = false\n")))
    assert err.value.problems == [
        "dmarc.enabled: the dmarc stage needs dkim results: set dkim.verify.enabled = true"]


def test_dmarc_off_allows_dkim_verification_off() -> None:
    assert "dkim-verify" not in names("[dkim.verify]\nenabled = false\n[dmarc]\nenabled = false\n")


def test_dmarc_runs_on_dkim_alone_when_spf_is_off() -> None:
    # SPF is used when present, not required: DMARC can still pass on an aligned DKIM signature.
    assert "dmarc" in names("[spf]\nenabled = false\n")


def test_check_config_refuses_and_names_the_key(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "m.toml"
    conf.write_text("[dkim.verify]\nenabled = false\n")
    assert main(["check-config", "-c", str(conf)]) == 2
    assert "dmarc.enabled: the dmarc stage needs dkim results" in capsys.readouterr().err


def test_explain_lists_every_stage_in_order(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["check-config", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()[1:]
    listed = [line.split()[1] for line in out]
    assert listed[:len(names())] == names()
    assert sorted(listed) == sorted(s.name for s in REGISTRY)
    assert any(line.split()[:2] == ["off", "dkim-sign"] for line in out)


def test_signing_goes_last_whatever_the_declaration_order() -> None:
    def spec(name: str, **kw) -> StageSpec[None]:  # type: ignore[no-untyped-def]
        return StageSpec(name, Phase.MESSAGE, lambda e: None, lambda e: True, **kw)  # type: ignore[arg-type, return-value]

    specs = [spec("sign", after=(EVERYTHING,)), spec("enforce", requires=("verdict",)),
             spec("check", provides=("verdict",)), spec("other")]
    assert [s.name for s in resolve(specs, None)] == ["check", "enforce", "other", "sign"]


def test_contradicting_declarations_are_a_cycle() -> None:
    def spec(name: str, **kw) -> StageSpec[None]:  # type: ignore[no-untyped-def]
        return StageSpec(name, Phase.MESSAGE, lambda e: None, lambda e: True, **kw)  # type: ignore[arg-type, return-value]

    with pytest.raises(graphlib.CycleError):
        resolve([spec("a", uses=("b",), provides=("a",)), spec("b", uses=("a",), provides=("b",))], None)


def test_explain_marks_what_is_needed_and_used() -> None:
    lines = explain(build_env(parse(""), rules_dir=None))
    dmarc = next(line for line in lines if line.split()[1] == "dmarc")
    assert "needs dkim, spf?" in dmarc and "gives dmarc" in dmarc


def test_registered_name_and_phase_match_the_stage() -> None:
    by_name = {s.name: s for s in REGISTRY}
    for stage in build_stages(build_env(parse(""), rules_dir=None)):
        assert stage.phase is by_name[stage.name].phase


def test_every_stage_on_orders_by_what_each_needs() -> None:
    key = Path(__file__).resolve().parents[1] / "data" / "dkim" / "rsa.key"
    config = parse(
        '[spf]\ntrusted_authserv_ids = ["gw.test"]\n[dkim]\nrequire_safe_keys = false\n'
        f'[dkim.keys.k]\ndomain = "example.com"\nselector = "rsa"\nkey_file = "{key}"\n'
        '[[dkim.sign]]\nmatch = ["*"]\nkeys = ["k"]\n'
        '[arc]\ntrusted_sealers = ["list.test"]\n[[arc.seal]]\nkey = "k"\n')
    order = names_of(build_stages(build_env(config, rules_dir=None)))
    assert sorted(order) == sorted(s.name for s in REGISTRY)
    assert order[-2:] == ["dkim-sign", "arc-seal"]
    for before, after in (("authres-strip", "spf-upstream"), ("spf-upstream", "dmarc"),
                          ("dkim-verify", "dmarc"), ("dmarc", "authres"), ("authres", "dmarc-enforce"),
                          ("header_checks", "outbound_header_checks"),
                          ("outbound_header_checks", "body_checks"), ("dkim-verify", "arc-verify"),
                          ("arc-verify", "authres"), ("dmarc", "arc-override"), ("arc-override", "authres")):
        assert order.index(before) < order.index(after), (before, after)


def names_of(stages: list[Stage]) -> list[str]:
    return [s.name for s in stages]
