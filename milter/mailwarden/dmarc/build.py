"""SPF, DMARC and Authentication-Results stages (issue 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailwarden.config.dmarc import AuthresSection
from mailwarden.dmarc.authres_add import AuthresAdd
from mailwarden.dmarc.authres_strip import AuthresStrip

if TYPE_CHECKING:
    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage


def authres_config(env: BuildEnv) -> AuthresSection:
    # [authres] lives in Config once the lead wires it; until then the defaults apply.
    section = getattr(env.config, "authres", None)
    return section if isinstance(section, AuthresSection) else AuthresSection()


def auth_stages(env: BuildEnv) -> list[Stage]:
    ar = authres_config(env)
    stages: list[Stage] = [AuthresStrip.build(env.authserv_id, ar.remove_ids)]
    if ar.enabled:
        stages.append(AuthresAdd(env.authserv_id, ar.outbound))
    return stages
