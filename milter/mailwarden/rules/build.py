"""Stages built from the rule packs (issue 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage


def rule_stages(env: BuildEnv) -> list[Stage]:
    return []
