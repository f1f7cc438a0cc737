"""[spf], [dmarc] and the Authentication-Results header (issue 5 fills this in)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpfSection:
    pass


@dataclass(frozen=True)
class DmarcSection:
    pass
