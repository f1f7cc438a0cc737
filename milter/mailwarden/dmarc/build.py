"""The DMARC stages: the result and disposition (`dmarc`), then the verdict (`dmarc-enforce`)."""

from __future__ import annotations

import ipaddress

from mailwarden.buildenv import BuildEnv
from mailwarden.dmarc import psl
from mailwarden.dmarc.check import DmarcCheck, LocalPolicy
from mailwarden.dmarc.enforce import DmarcEnforce
from mailwarden.dmarc.evaluate import Evaluator
from mailwarden.spf.build import lower_names


def dmarc_check(env: BuildEnv) -> DmarcCheck:
    cfg = env.config.dmarc
    evaluator = Evaluator(env.resolver, psl.load(cfg.psl_file, cfg.psl_private),
                          cfg.discovery == "tree-walk", env.random)
    local = LocalPolicy(
        report_only=cfg.mode == "report",
        temperror_tempfail=cfg.temperror == "tempfail",
        multi_from=cfg.multi_from,
        exempt_networks=tuple(ipaddress.ip_network(n, strict=False) for n in cfg.exempt_networks),
        exempt_sender_domains=lower_names(cfg.exempt_sender_domains),
        exempt_recipients=lower_names(cfg.exempt_recipients),
    )
    return DmarcCheck(evaluator, local)


def dmarc_enforce(env: BuildEnv) -> DmarcEnforce:
    cfg = env.config.dmarc
    return DmarcEnforce(cfg.reject_text, cfg.quarantine == "hold", cfg.quarantine_header)
