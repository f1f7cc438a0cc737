"""[rules]: header_checks rule packs (issue 3 fills this in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RulesSection:
    pass
