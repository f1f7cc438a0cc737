"""Stages built from the rule packs (issue 3): the composition of holder, options and stages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mailwarden.config.rules import RulesSection
from mailwarden.errors import ConfigError

if TYPE_CHECKING:
    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage


def rule_dirs(section: RulesSection, default_dir: Path | None) -> list[Path]:
    dirs: list[Path] = []
    if section.default_packs and default_dir is not None:
        dirs.append(default_dir)
    dirs.extend(Path(d) for d in section.dirs)
    return dirs


def rule_stages(env: BuildEnv) -> list[Stage]:
    """Header, outbound and body stages over one live rule set; a bad rule stops the start."""
    from mailwarden.rules.holder import RuleSetHolder, errors_of
    from mailwarden.rules.stages.common import RuleOptions
    from mailwarden.rules.stages.mime_body import BodyChecks
    from mailwarden.rules.stages.outbound import OutboundHeaderChecks
    from mailwarden.rules.stages.top_headers import TopHeaderChecks

    section = env.config.rules
    if not section.enabled:
        return []
    holder = RuleSetHolder(rule_dirs(section, env.rules_dir), section.timeout, section.reload_interval)
    errors = errors_of(holder.current)
    if errors:
        raise ConfigError([f"rules: {p}" for p in errors])
    options = RuleOptions(section.on_timeout, section.body_size_limit, section.line_length_limit)
    return [
        TopHeaderChecks(holder, options),
        OutboundHeaderChecks(holder, options),
        BodyChecks(holder, options),
    ]
