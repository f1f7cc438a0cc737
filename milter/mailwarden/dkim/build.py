"""DKIM stages (issue 4): verification for inbound mail, signing for outbound mail."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage


def verify_stages(env: BuildEnv) -> list[Stage]:
    return []


def sign_stages(env: BuildEnv) -> list[Stage]:
    return []
