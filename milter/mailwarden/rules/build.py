"""Stages built from the rule packs (issue 3): three stages over one live rule set."""

from __future__ import annotations

from pathlib import Path

from mailwarden.buildenv import BuildEnv
from mailwarden.config.rules import RulesSection
from mailwarden.errors import ConfigError
from mailwarden.rules.holder import RuleSetHolder, errors_of
from mailwarden.rules.stages.common import RuleOptions
from mailwarden.rules.stages.mime_body import BodyChecks
from mailwarden.rules.stages.outbound import OutboundHeaderChecks
from mailwarden.rules.stages.top_headers import TopHeaderChecks


def rule_dirs(section: RulesSection, default_dir: Path | None) -> list[Path]:
    dirs: list[Path] = []
    if section.default_packs and default_dir is not None:
        dirs.append(default_dir)
    dirs.extend(Path(d) for d in section.dirs)
    return dirs


def _holder(env: BuildEnv) -> RuleSetHolder:
    """The rule set the three stages share; a bad rule stops the start."""
    section = env.config.rules
    holder = RuleSetHolder(rule_dirs(section, env.rules_dir), section.timeout)
    errors = errors_of(holder.current)
    if errors:
        raise ConfigError([f"rules: {p}" for p in errors])
    return holder


def _options(env: BuildEnv) -> RuleOptions:
    section = env.config.rules
    return RuleOptions(
        section.on_timeout, section.body_size_limit, section.line_length_limit, section.message_budget
    )


def header_checks(env: BuildEnv) -> TopHeaderChecks:
    return TopHeaderChecks(env.shared("rules", _holder), _options(env))


def outbound_header_checks(env: BuildEnv) -> OutboundHeaderChecks:
    return OutboundHeaderChecks(env.shared("rules", _holder), _options(env))


def body_checks(env: BuildEnv) -> BodyChecks:
    return BodyChecks(env.shared("rules", _holder), _options(env))


def rule_stages(env: BuildEnv) -> list[TopHeaderChecks | OutboundHeaderChecks | BodyChecks]:
    """Only the rule stages, in pipeline order (for running the rules alone, as their tests do)."""
    if not env.config.rules.enabled:
        return []
    return [header_checks(env), outbound_header_checks(env), body_checks(env)]
