"""The SPF stages: our own check at MAIL FROM, and a trusted upstream host's result."""

from __future__ import annotations

from mailwarden.buildenv import BuildEnv
from mailwarden.spf.check import SpfCheck
from mailwarden.spf.upstream import SpfUpstream


def lower_names(items: tuple[str, ...]) -> frozenset[str]:
    """Domain names and authserv-ids as compared: lower case, no trailing dot, blanks dropped."""
    return frozenset(i.strip().rstrip(".").lower() for i in items if i.strip())


def spf_check(env: BuildEnv) -> SpfCheck:
    cfg = env.config.spf
    return SpfCheck(env.resolver, cfg.check_helo, cfg.reject_on_fail, cfg.reject_helo_fail, cfg.lookup_time)


def trusted_upstream(env: BuildEnv) -> frozenset[str]:
    """The authserv-ids whose SPF result we take; never our own (anybody can forge it)."""
    return lower_names(env.config.spf.trusted_authserv_ids) - {env.authserv_id.lower()}


def spf_upstream(env: BuildEnv) -> SpfUpstream:
    return SpfUpstream(trusted_upstream(env))
