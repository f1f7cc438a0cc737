"""DKIM stages (issue 4): verification for inbound mail, signing for outbound mail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mailwarden.buildenv import BuildEnv
from mailwarden.config.dkim import DkimSection, seconds
from mailwarden.dkim.keys import KeyError_, load_private_key
from mailwarden.dkim.sign import Signer, SigningKey
from mailwarden.dkim.sign_stage import DkimSign, Rule
from mailwarden.dkim.verify import Verifier, VerifyPolicy
from mailwarden.dkim.verify_stage import DkimVerify
from mailwarden.errors import ConfigError

if TYPE_CHECKING:
    from mailwarden.config import Config


def dkim_verify(env: BuildEnv) -> DkimVerify:
    cfg = env.config.dkim.verify
    policy = VerifyPolicy(cfg.max_signatures, cfg.min_rsa_bits, cfg.allow_sha1,
                          cfg.on_body_length_extension, cfg.drift_seconds)
    actions = {"fail": cfg.on_fail, "none": cfg.on_none, "temperror": cfg.on_temperror,
               "permerror": cfg.on_permerror, "policy": cfg.on_policy}
    return DkimVerify(Verifier(env.resolver, env.clock, policy), actions, cfg.verify_outbound)


def load_keys(config: Config) -> dict[str, SigningKey]:
    """Every configured key, parsed once; ConfigError lists every key that cannot be used."""
    dkim: DkimSection = config.dkim
    keys: dict[str, SigningKey] = {}
    problems = []
    for name, k in dkim.keys.items():
        try:
            private = load_private_key(Path(k.key_file), dkim.require_safe_keys)
        except KeyError_ as exc:
            problems.append(f"dkim.keys.{name}.key_file: {exc}")
            continue
        keys[name] = SigningKey(name, k.domain.lower().rstrip("."), k.selector, private)
    if problems:
        raise ConfigError(problems)
    return keys


def signing_keys(env: BuildEnv) -> dict[str, SigningKey]:
    """The configured keys, loaded once per build; checked at start-up even when no rule signs."""
    return env.shared("dkim.keys", lambda e: load_keys(e.config))


def dkim_sign(env: BuildEnv) -> DkimSign:
    dkim = env.config.dkim
    keys = signing_keys(env)
    rules = tuple(Rule(r.match, r.identity, tuple(keys[n] for n in r.keys)) for r in dkim.sign)
    signer = Signer(dkim.canonicalization, dkim.headers, dkim.oversign, seconds(dkim.expire))
    return DkimSign(signer, rules, env.clock, dkim.warn_8bit)
