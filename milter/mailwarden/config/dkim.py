"""[dkim]: verifying and signing (issue 4 fills this in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DkimSection:
    pass
