"""ARC stages (issue 14), for the stage registry in bootstrap: verify after DKIM verification, the
DMARC override between DMARC evaluation and the A-R header, sealing last (after DKIM signing)."""

from __future__ import annotations

from mailwarden.arc.override import ArcOverride
from mailwarden.arc.seal import ArcSealer
from mailwarden.arc.seal_stage import ArcSeal, SealRule
from mailwarden.arc.verify import ArcPolicy, ArcVerifier
from mailwarden.arc.verify_stage import ArcVerify
from mailwarden.buildenv import BuildEnv
from mailwarden.core.model import Direction
from mailwarden.dkim.build import signing_keys
from mailwarden.dmarc import psl
from mailwarden.errors import ConfigError

_DIRECTIONS = {"inbound": frozenset({Direction.INBOUND}), "outbound": frozenset({Direction.OUTBOUND}),
               "all": frozenset(Direction)}


def _sealed_directions(env: BuildEnv) -> frozenset[Direction]:
    return frozenset(d for r in env.config.arc.seal for d in _DIRECTIONS[r.direction])


def verify_enabled(env: BuildEnv) -> bool:
    # Sealing needs our own verdict on the chain for cv=, whatever [arc] enabled says.
    return env.config.arc.enabled or bool(env.config.arc.seal)


def arc_verify(env: BuildEnv) -> ArcVerify:
    cfg = env.config.arc
    directions = _sealed_directions(env) | (frozenset({Direction.INBOUND}) if cfg.enabled else frozenset())
    policy = ArcPolicy(cfg.max_instances, env.config.dkim.verify.min_rsa_bits)
    return ArcVerify(ArcVerifier(env.resolver, policy), directions)


def override_enabled(env: BuildEnv) -> bool:
    cfg = env.config.arc
    return cfg.enabled and bool(cfg.trusted_sealers) and env.config.dmarc.enabled


def arc_override(env: BuildEnv) -> ArcOverride:
    dmarc = env.config.dmarc
    table = psl.load(dmarc.psl_file, dmarc.psl_private)
    sealers = frozenset(d.lower().rstrip(".") for d in env.config.arc.trusted_sealers)
    return ArcOverride(sealers, lambda d: psl.org_domain(d, table))


def arc_seal(env: BuildEnv) -> ArcSeal:
    cfg = env.config.arc
    keys = signing_keys(env)
    problems = [f"arc.seal[{i}].key: no [dkim.keys.{r.key}] table" for i, r in enumerate(cfg.seal)
                if r.key not in keys]
    if problems:
        raise ConfigError(problems)
    rules = tuple(SealRule(keys[r.key], _DIRECTIONS[r.direction],
                           tuple(d.lower().rstrip(".") for d in r.recipient_domains)) for r in cfg.seal)
    return ArcSeal(ArcSealer(env.config.dkim.headers), rules, env.authserv_id, env.clock)
