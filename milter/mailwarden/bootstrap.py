"""The composition root: the one place that joins config, resolver, rule packs and keys.

The resulting `Runtime` is immutable and shared by every libmilter thread.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailwarden.arc import build as arc
from mailwarden.authres import build as authres
from mailwarden.buildenv import BuildEnv
from mailwarden.config import Config
from mailwarden.core.decisions import ACCEPT, Outcome, Verdict
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase, Pipeline, Stage, default_error_verdict
from mailwarden.core.policy import DirectionPolicy
from mailwarden.core.ports import Clock, Random, Resolver
from mailwarden.core.registry import EVERYTHING, StageSpec, resolve
from mailwarden.core.registry import explain as registry_explain
from mailwarden.core.stages.hopcount import Hopcount
from mailwarden.dkim import build as dkim
from mailwarden.dmarc import build as dmarc
from mailwarden.reports.build import build_recorder
from mailwarden.reports.recorder import Recorder
from mailwarden.resolver.live import LiveResolver
from mailwarden.resolver.static import StaticZone
from mailwarden.rules import build as rules
from mailwarden.spf import build as spf


@dataclass(frozen=True)
class Runtime:
    config: Config
    resolver: Resolver
    direction: DirectionPolicy
    pipeline: Pipeline
    authserv_id: str
    recorder: Recorder | None = None  # DMARC report rows; None when [reports] store is empty

    def record(self, tx: Transaction, outcome: Outcome) -> None:
        """Queue the message's DMARC evaluation for reports; never slows or fails the message."""
        if self.recorder is not None:
            self.recorder.record_outcome(tx, outcome)


SYSTEM_RULES_DIR = Path("/etc/mailwarden/rules")


def default_rules_dir() -> Path | None:
    """rules/ of a checkout, else /etc/mailwarden/rules, else the packs the wheel carries."""
    from mailwarden import packaged

    for candidate in (packaged.in_checkout("rules"), SYSTEM_RULES_DIR, packaged.in_wheel("rules")):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def build_resolver(config: Config, zones: Sequence[str] = ()) -> Resolver:
    from mailwarden.metrics import counted

    all_zones = (*config.dns.zones, *zones)
    if all_zones:
        return counted(StaticZone.from_files(all_zones))
    return counted(LiveResolver(config.dns.timeout, config.dns.nameservers, config.dns.cache_size))


def _spec(name: str, phase: Phase, build: Callable[[BuildEnv], Stage], enabled: Callable[[BuildEnv], bool],
          key: str = "", **kw: Any) -> StageSpec[BuildEnv]:
    return StageSpec(name, phase, build, enabled, key, **kw)


ENVELOPE, HEADERS, MESSAGE = Phase.ENVELOPE, Phase.HEADERS, Phase.MESSAGE

# Every stage, declared once. The order is derived from what each needs (core/registry.py);
# among stages free to go, the one declared first goes first.
REGISTRY: tuple[StageSpec[BuildEnv], ...] = (
    _spec("spf", ENVELOPE, spf.spf_check, lambda e: e.config.spf.enabled, "spf.enabled",
          provides=("spf",), why="MAIL FROM and HELO identities (RFC 7208)"),
    _spec("hopcount", HEADERS, lambda e: Hopcount(e.config.hopcount.limit), lambda e: True,
          why="mail loops, as Postfix's hopcount_limit"),
    _spec("header_checks", HEADERS, rules.header_checks, lambda e: e.config.rules.enabled, "rules.enabled",
          provides=("rules",), why="header_checks and mime_header_checks at end of headers"),
    _spec("outbound_header_checks", MESSAGE, rules.outbound_header_checks,
          lambda e: e.config.rules.enabled, "rules.enabled", uses=("rules",), provides=("rules",),
          why="smtp_header_checks, outbound mail only"),
    _spec("body_checks", MESSAGE, rules.body_checks, lambda e: e.config.rules.enabled, "rules.enabled",
          uses=("rules",), why="MIME part headers and body; then HOLD, REDIRECT, PASS"),
    _spec("dkim-verify", MESSAGE, dkim.dkim_verify, lambda e: e.config.dkim.verify.enabled,
          "dkim.verify.enabled", provides=("dkim",), why="every signature, headers as received"),
    _spec("arc-verify", MESSAGE, arc.arc_verify, arc.verify_enabled, "arc.enabled", after=("dkim-verify",),
          provides=("arc",), why="the ARC chain as received (RFC 8617)"),
    _spec("authres-strip", MESSAGE, authres.authres_strip, lambda e: True,
          why="incoming Authentication-Results that claim our authserv-id"),
    _spec("spf-upstream", MESSAGE, spf.spf_upstream, lambda e: bool(spf.trusted_upstream(e)),
          "spf.trusted_authserv_ids", after=("authres-strip",), provides=("spf",),
          why="SPF result of a trusted gateway instead of ours"),
    _spec("dmarc", MESSAGE, dmarc.dmarc_check, lambda e: e.config.dmarc.enabled, "dmarc.enabled",
          requires=("dkim",), uses=("spf",), provides=("dmarc",),
          why="result and disposition, local policy included"),
    _spec("arc-override", MESSAGE, arc.arc_override, arc.override_enabled, "arc.trusted_sealers",
          requires=("dmarc", "arc"), provides=("dmarc",), why="a trusted sealer's chain rescues DMARC"),
    _spec("authres", MESSAGE, authres.authres_add, lambda e: e.config.authres.enabled, "authres.enabled",
          uses=("spf", "dkim", "arc", "dmarc"), after=("authres-strip",),
          why="our Authentication-Results header"),
    # The verdict after the header, so that a held message carries it when released.
    _spec("dmarc-enforce", MESSAGE, dmarc.dmarc_enforce, lambda e: e.config.dmarc.enabled, "dmarc.enabled",
          requires=("dmarc",), after=("authres",), why="reject, hold or tempfail as decided"),
    # Signing comes last, so the signature covers exactly the headers delivered.
    _spec("dkim-sign", MESSAGE, dkim.dkim_sign, lambda e: bool(e.config.dkim.sign), "dkim.sign",
          after=(EVERYTHING,), why="outbound mail, the headers as delivered"),
    _spec("arc-seal", MESSAGE, arc.arc_seal, lambda e: bool(e.config.arc.seal), "arc.seal", uses=("arc",),
          after=(EVERYTHING, "dkim-sign"), why="our ARC set, over the final A-R header and signatures"),
)


def build_stages(env: BuildEnv, names: Collection[str] | None = None) -> list[Stage]:
    """The enabled stages in the order the registry gives (only `names`, if given)."""
    dkim.signing_keys(env)  # every configured key is checked, used by a rule or not
    stages: list[Stage] = []
    for spec in resolve(REGISTRY, env):
        if names is not None and spec.name not in names:
            continue
        stage = spec.build(env)
        if stage.name != spec.name or stage.phase is not spec.phase:
            raise RuntimeError(f"stage {stage.name}/{stage.phase} is registered as {spec.name}/{spec.phase}")
        stages.append(stage)
    return stages


def explain(env: BuildEnv) -> list[str]:
    """The resolved pipeline for `check-config --explain`."""
    return registry_explain(REGISTRY, env)


def build_runtime(
    config: Config,
    zones: Sequence[str] = (),
    rules_dir: Path | None = None,
    clock: Clock = time.time,
    rand: Random = random.random,
) -> Runtime:
    """Everything a message needs, checked now so a bad key or rule stops the start."""
    env = build_env(config, zones, rules_dir, clock, rand)
    on_error = default_error_verdict if config.milter.on_error == "tempfail" else _accept_on_error
    pipeline = Pipeline(build_stages(env), on_error=on_error)
    direction = DirectionPolicy.build(config.policy.originating_daemons, config.policy.trusted_networks)
    recorder = build_recorder(config, env.resolver)  # starts nothing until the milter records
    return Runtime(config, env.resolver, direction, pipeline, env.authserv_id, recorder)


def build_env(
    config: Config,
    zones: Sequence[str] = (),
    rules_dir: Path | None = None,
    clock: Clock = time.time,
    rand: Random = random.random,
) -> BuildEnv:
    resolver = build_resolver(config, zones)
    authserv_id = config.policy.authserv_id or socket.getfqdn()
    return BuildEnv(config, resolver, authserv_id, rules_dir or default_rules_dir(), clock, rand)


def _accept_on_error(stage: str) -> Verdict:
    return ACCEPT
