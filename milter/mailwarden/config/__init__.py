"""The one TOML configuration, checked completely at start-up."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.config.arc import ArcSection
from mailwarden.config.base import DnsSection, HopcountSection, MilterSection, PolicySection
from mailwarden.config.dkim import DkimSection
from mailwarden.config.dmarc import AuthresSection, DmarcSection, SpfSection
from mailwarden.config.loader import build
from mailwarden.config.log import LogSection
from mailwarden.config.metrics import MetricsSection
from mailwarden.config.reports import ReportsSection
from mailwarden.config.rules import RulesSection
from mailwarden.errors import ConfigError


@dataclass(frozen=True)
class Config:
    milter: MilterSection = field(default_factory=MilterSection)
    policy: PolicySection = field(default_factory=PolicySection)
    hopcount: HopcountSection = field(default_factory=HopcountSection)
    dns: DnsSection = field(default_factory=DnsSection)
    rules: RulesSection = field(default_factory=RulesSection)
    dkim: DkimSection = field(default_factory=DkimSection)
    spf: SpfSection = field(default_factory=SpfSection)
    dmarc: DmarcSection = field(default_factory=DmarcSection)
    authres: AuthresSection = field(default_factory=AuthresSection)
    arc: ArcSection = field(default_factory=ArcSection)
    reports: ReportsSection = field(default_factory=ReportsSection)
    log: LogSection = field(default_factory=LogSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    source: str = field(default="(embedded defaults)", metadata={"internal": True})


def parse(text: str, source: str = "(string)", base_dir: Path | None = None) -> Config:
    """Parse and check a whole configuration; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: TOML syntax: {exc}"]) from None
    problems: list[str] = []
    config = build(Config, data, "", problems, base_dir)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return Config(**{**config.__dict__, "source": source})


def load(path: str | Path | None) -> Config:
    """The configuration in `path`, or the embedded defaults when `path` is None."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    return parse(text, str(p), p.parent)

