"""ARC stages (issue 14), placed among the others: verify after DKIM verification, the DMARC
override between DMARC evaluation and the A-R header, sealing last (after DKIM signing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailwarden.arc.override import ArcOverride
from mailwarden.arc.seal import ArcSealer
from mailwarden.arc.seal_stage import ArcSeal, SealRule
from mailwarden.arc.verify import ArcPolicy, ArcVerifier
from mailwarden.arc.verify_stage import ArcVerify
from mailwarden.core.model import Direction
from mailwarden.dkim.build import load_keys
from mailwarden.dmarc import psl
from mailwarden.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage

_DIRECTIONS = {"inbound": frozenset({Direction.INBOUND}), "outbound": frozenset({Direction.OUTBOUND}),
               "all": frozenset(Direction)}


def with_arc(env: BuildEnv, stages: Sequence[Stage]) -> list[Stage]:
    """`stages` with the ARC stages inserted where they belong."""
    cfg = env.config.arc
    seal = seal_stage(env)
    directions = frozenset({Direction.INBOUND}) if cfg.enabled else frozenset()
    if seal is not None:  # sealing needs our own verdict on the chain for cv=
        directions |= frozenset(d for r in seal.rules for d in r.directions)
    out = list(stages)
    if directions:
        policy = ArcPolicy(cfg.max_instances, env.config.dkim.verify.min_rsa_bits)
        verify = ArcVerify(ArcVerifier(env.resolver, policy), directions)
        _insert_after(out, ("dkim-verify", "hopcount"), verify)
    if cfg.trusted_sealers and cfg.enabled and any(s.name == "dmarc" for s in out):
        dmarc = env.config.dmarc
        table = psl.load(dmarc.psl_file, dmarc.psl_private)
        sealers = frozenset(d.lower().rstrip(".") for d in cfg.trusted_sealers)
        _insert_after(out, ("dmarc",), ArcOverride(sealers, lambda d: psl.org_domain(d, table)))
    if seal is not None:
        out.append(seal)
    return out


def _insert_after(stages: list[Stage], names: tuple[str, ...], stage: Stage) -> None:
    """Insert after the first stage named in `names` that is present (else first)."""
    for name in names:
        for i, s in enumerate(stages):
            if s.name == name:
                stages.insert(i + 1, stage)
                return
    stages.insert(0, stage)


def seal_stage(env: BuildEnv) -> ArcSeal | None:
    cfg = env.config.arc
    if not cfg.seal:
        return None
    keys = load_keys(env.config)
    problems = [f"arc.seal[{i}].key: no [dkim.keys.{r.key}] table" for i, r in enumerate(cfg.seal)
                if r.key not in keys]
    if problems:
        raise ConfigError(problems)
    rules = tuple(SealRule(keys[r.key], _DIRECTIONS[r.direction],
                           tuple(d.lower().rstrip(".") for d in r.recipient_domains)) for r in cfg.seal)
    return ArcSeal(ArcSealer(env.config.dkim.headers), rules, env.authserv_id, env.clock)
