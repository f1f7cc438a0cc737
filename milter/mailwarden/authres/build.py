"""The Authentication-Results stages: forged headers out, ours in."""

from __future__ import annotations

from mailwarden.authres.add import AuthresAdd
from mailwarden.authres.strip import AuthresStrip
from mailwarden.buildenv import BuildEnv


def authres_strip(env: BuildEnv) -> AuthresStrip:
    return AuthresStrip.build(env.authserv_id, env.config.authres.remove_ids)


def authres_add(env: BuildEnv) -> AuthresAdd:
    return AuthresAdd(env.authserv_id, env.config.authres.outbound)
