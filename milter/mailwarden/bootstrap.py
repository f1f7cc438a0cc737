"""The composition root: the one place that joins config, resolver, rule packs and keys.

The resulting `Runtime` is immutable and shared by every libmilter thread.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.config import Config
from mailwarden.core.decisions import ACCEPT, Verdict
from mailwarden.core.pipeline import Pipeline, Stage, default_error_verdict
from mailwarden.core.policy import DirectionPolicy
from mailwarden.core.ports import Clock, Random, Resolver
from mailwarden.core.stages.hopcount import Hopcount
from mailwarden.resolver.live import LiveResolver
from mailwarden.resolver.static import StaticZone


@dataclass(frozen=True)
class BuildEnv:
    """What feature packages get to build their stages."""

    config: Config
    resolver: Resolver
    authserv_id: str
    rules_dir: Path | None
    clock: Clock = time.time
    random: Random = field(default=random.random)


@dataclass(frozen=True)
class Runtime:
    config: Config
    resolver: Resolver
    direction: DirectionPolicy
    pipeline: Pipeline
    authserv_id: str


SYSTEM_RULES_DIR = Path("/etc/mailwarden/rules")


def default_rules_dir() -> Path | None:
    """rules/ beside milter/ in a checkout, else /etc/mailwarden/rules; None when neither exists."""
    for candidate in (Path(__file__).resolve().parents[2] / "rules", SYSTEM_RULES_DIR):
        if candidate.is_dir():
            return candidate
    return None


def build_resolver(config: Config, zones: Sequence[str] = ()) -> Resolver:
    all_zones = (*config.dns.zones, *zones)
    if all_zones:
        return StaticZone.from_files(all_zones)
    return LiveResolver(config.dns.timeout, config.dns.nameservers, config.dns.cache_size)


def build_stages(env: BuildEnv) -> list[Stage]:
    # Imported here so a feature's import cost and errors stay with the runtime that uses it.
    from mailwarden.arc.build import with_arc
    from mailwarden.dkim.build import sign_stages, verify_stages
    from mailwarden.dmarc.build import auth_stages
    from mailwarden.rules.build import rule_stages

    config = env.config
    return with_arc(env, [
        Hopcount(config.hopcount.limit),
        *rule_stages(env),
        *verify_stages(env),
        *auth_stages(env),
        # Signing comes last, so the signature covers exactly the headers delivered.
        *sign_stages(env),
    ])


def build_runtime(
    config: Config,
    zones: Sequence[str] = (),
    rules_dir: Path | None = None,
    clock: Clock = time.time,
    rand: Random = random.random,
) -> Runtime:
    """Everything a message needs, checked now so a bad key or rule stops the start."""
    resolver = build_resolver(config, zones)
    authserv_id = config.policy.authserv_id or socket.getfqdn()
    env = BuildEnv(config, resolver, authserv_id, rules_dir or default_rules_dir(), clock, rand)
    on_error = default_error_verdict if config.milter.on_error == "tempfail" else _accept_on_error
    pipeline = Pipeline(build_stages(env), on_error=on_error)
    direction = DirectionPolicy.build(config.policy.originating_daemons, config.policy.trusted_networks)
    return Runtime(config, resolver, direction, pipeline, authserv_id)


def _accept_on_error(stage: str) -> Verdict:
    return ACCEPT
