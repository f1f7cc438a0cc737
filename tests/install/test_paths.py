"""The paths the README's install section, the systemd unit and `mailwarden init` name are the
defaults the code uses."""

from __future__ import annotations

from pathlib import Path

from mailwarden.bootstrap import SYSTEM_RULES_DIR
from mailwarden.config.base import MilterSection
from mailwarden.layout import ETC, UNIT, UNIT_COMMAND

REPO = Path(__file__).resolve().parents[2]


def _install_section() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("## Install on a mail server", 1)[1].split("\n## ", 1)[0]


def test_readme_install_section_names_the_defaults() -> None:
    text = _install_section()
    config = f"/{ETC}/mailwarden.toml"
    assert f"/{ETC}" == "/etc/mailwarden" and str(SYSTEM_RULES_DIR) == f"/{ETC}/rules"
    assert MilterSection().socket in text
    assert f"{UNIT_COMMAND} init" in text and f"{UNIT_COMMAND} check-config --config {config}" in text
    assert f"/{UNIT}" in text and str(SYSTEM_RULES_DIR) in text


def test_the_unit_starts_the_readme_command_on_the_default_config() -> None:
    unit = (REPO / "contrib/systemd/mailwarden.service").read_text()
    assert f"ExecStart={UNIT_COMMAND} serve --config /{ETC}/mailwarden.toml" in unit
    postfix = (REPO / "contrib/postfix/main.cf.snippet").read_text()
    assert f"smtpd_milters = {MilterSection().socket}" in postfix
