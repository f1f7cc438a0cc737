"""SPF, DMARC and Authentication-Results stages (issue 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwarden.bootstrap import BuildEnv
    from mailwarden.core.pipeline import Stage


def auth_stages(env: BuildEnv) -> list[Stage]:
    return []
