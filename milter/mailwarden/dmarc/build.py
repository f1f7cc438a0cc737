"""SPF, DMARC and Authentication-Results stages (issue 5).

Order at end of message: strip forged A-R, trusted upstream SPF, DMARC, our A-R header, and last
the DMARC verdict, so that a held message already carries the header.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from mailwarden.dmarc import psl
from mailwarden.dmarc.authres_add import AuthresAdd
from mailwarden.dmarc.authres_strip import AuthresStrip
from mailwarden.dmarc.dmarc_check import DmarcCheck, LocalPolicy
from mailwarden.dmarc.dmarc_enforce import DmarcEnforce
from mailwarden.dmarc.evaluate import Evaluator
from mailwarden.dmarc.spf_check import SpfCheck
from mailwarden.dmarc.spf_upstream import SpfUpstream

if TYPE_CHECKING:
    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage


def _lower(items: tuple[str, ...]) -> frozenset[str]:
    return frozenset(i.strip().rstrip(".").lower() for i in items if i.strip())


def auth_stages(env: BuildEnv) -> list[Stage]:
    spf_cfg = env.config.spf
    dmarc_cfg = env.config.dmarc
    ar = env.config.authres
    stages: list[Stage] = []
    if spf_cfg.enabled:
        stages.append(SpfCheck(env.resolver, spf_cfg.check_helo, spf_cfg.reject_on_fail,
                               spf_cfg.reject_helo_fail, spf_cfg.lookup_time))
    stages.append(AuthresStrip.build(env.authserv_id, ar.remove_ids))
    trusted = _lower(spf_cfg.trusted_authserv_ids) - {env.authserv_id.lower()}
    if trusted:
        stages.append(SpfUpstream(trusted))
    if dmarc_cfg.enabled:
        evaluator = Evaluator(env.resolver, psl.load(dmarc_cfg.psl_file, dmarc_cfg.psl_private),
                              dmarc_cfg.discovery == "tree-walk", env.random)
        local = LocalPolicy(
            report_only=dmarc_cfg.mode == "report",
            temperror_tempfail=dmarc_cfg.temperror == "tempfail",
            multi_from=dmarc_cfg.multi_from,
            exempt_networks=tuple(ipaddress.ip_network(n, strict=False) for n in dmarc_cfg.exempt_networks),
            exempt_sender_domains=_lower(dmarc_cfg.exempt_sender_domains),
            exempt_recipients=_lower(dmarc_cfg.exempt_recipients),
        )
        stages.append(DmarcCheck(evaluator, local))
    if ar.enabled:
        stages.append(AuthresAdd(env.authserv_id, ar.outbound))
    if dmarc_cfg.enabled:
        stages.append(DmarcEnforce(dmarc_cfg.reject_text, dmarc_cfg.quarantine == "hold",
                                   dmarc_cfg.quarantine_header))
    return stages
