"""The TOML config: defaults without a file, every error reported with its key path."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mailwarden.cli import main
from mailwarden.config import load, parse
from mailwarden.errors import ConfigError


def test_defaults_without_a_file() -> None:
    config = load(None)
    assert config.milter.socket == "unix:/run/pymilter.sock"
    assert config.hopcount.limit == 50
    assert "ORIGINATING" in config.policy.originating_daemons


def test_every_problem_is_reported_with_its_key_path() -> None:
    text = """
[milter]
sockt = "unix:/x"
socket_mode = "999"
on_error = "explode"
[hopcount]
limit = "fifty"
[policy]
trusted_networks = ["10.0.0.0/8", "not-a-net"]
[nonsense]
"""
    with pytest.raises(ConfigError) as info:
        parse(text, "t.toml")
    problems = "\n".join(info.value.problems)
    for expected in (
        "t.toml: milter.sockt: unknown key",
        "t.toml: milter.socket_mode: not an octal file mode",
        "t.toml: milter.on_error: must be one of 'tempfail', 'accept'",
        "t.toml: hopcount.limit: expected int",
        "t.toml: policy.trusted_networks[1]:",
        "t.toml: nonsense: unknown key",
    ):
        assert expected in problems
    assert len(info.value.problems) == 6


def test_toml_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="TOML syntax"):
        parse("[milter\n", "bad.toml")


def test_zone_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "z.zone").write_text("a.test. 60 IN TXT \"x\"\n")
    (tmp_path / "c.toml").write_text('[dns]\nzones = ["z.zone"]\n')
    config = load(tmp_path / "c.toml")
    assert config.dns.zones == (str(tmp_path / "z.zone"),)


def test_check_config_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[hopcount]\nlimit = 30\n")
    assert main(["check-config", "--config", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[hopcount]\nlimt = 30\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "hopcount.limt: unknown key" in capsys.readouterr().err


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "contrib" / "mailwarden.toml"
    config = load(example)
    assert config.source.endswith("mailwarden.toml")


def test_example_config_is_the_generated_one() -> None:
    # contrib/mailwarden.toml documents every key; regenerate it with `mailwarden config-example`.
    from mailwarden.config import Config
    from mailwarden.config.example import render

    example = Path(__file__).parents[2] / "contrib" / "mailwarden.toml"
    assert example.read_text() == render(Config())


def test_example_documents_every_key_with_a_comment() -> None:
    from mailwarden.config import Config
    from mailwarden.config.example import render

    lines = render(Config()).splitlines()
    undocumented = [
        line for prev, line in itertools.pairwise(lines)
        if " = " in line and not line.startswith("#") and not prev.startswith("#")
    ]
    assert undocumented == []


@pytest.mark.parametrize("value, reason", [
    ("0", 'milter.workers: must be "auto" or 1 to 256, got 0'),
    ("300", 'milter.workers: must be "auto" or 1 to 256, got 300'),
    ('"many"', "milter.workers:"),
    ("1.5", "milter.workers:"),
])
def test_workers_is_auto_or_a_sane_count(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f"[milter]\nworkers = {value}\n", "t.toml")
    assert f"t.toml: {reason}" in "\n".join(info.value.problems)


def test_workers_auto_and_a_count_are_accepted() -> None:
    assert load(None).milter.workers == "auto"
    assert parse("[milter]\nworkers = 3\n", "t.toml").milter.workers == 3


def test_every_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    # One rule for every file or directory a config names, whatever the working directory.
    (tmp_path / "c.toml").write_text(
        '[dns]\nzones = ["z.zone", "/abs/z.zone"]\n[rules]\ndirs = ["packs"]\n'
        '[dmarc]\npsl_file = "psl.dat"\n[dkim.keys.k]\ndomain = "a.test"\nselector = "s"\n'
        'key_file = "keys/k.pem"\n')
    config = load(tmp_path / "c.toml")
    assert config.dns.zones == (str(tmp_path / "z.zone"), "/abs/z.zone")
    assert config.rules.dirs == (str(tmp_path / "packs"),)
    assert config.dmarc.psl_file == str(tmp_path / "psl.dat")
    assert config.dkim.keys["k"].key_file == str(tmp_path / "keys/k.pem")


def test_paths_of_a_config_without_a_file_stay_as_written() -> None:
    config = parse('[rules]\ndirs = ["packs"]\n[dmarc]\npsl_file = ""\n')
    assert config.rules.dirs == ("packs",) and config.dmarc.psl_file == ""
