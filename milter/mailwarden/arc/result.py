"""The ARC chain result: a fact for the A-R header, the DMARC override, sealing and dry-run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class ArcInstance:
    """One ARC set as verified: its seal's signer, cv=, and what verified."""

    instance: int
    domain: str  # ARC-Seal d=
    selector: str  # ARC-Seal s=
    cv: str  # ARC-Seal cv= as written
    seal: str = ""  # pass, fail, temperror, or "" when not checked
    ams: str = ""  # the same for the ARC-Message-Signature
    ams_domain: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"i": self.instance, "d": self.domain, "s": self.selector, "cv": self.cv,
                "result": self.seal or None, "ams": self.ams or None, "ams_d": self.ams_domain or None,
                "reason": self.reason or None}


@dataclass(frozen=True, slots=True)
class ArcResult:
    """The chain validation status (RFC 8617 5.2) of the message as received.

    `result` is pass, fail, none, temperror or permerror. `oldest_pass` is the lowest instance
    whose AMS still verifies, 0 when all of them do (only meaningful with pass). `aar1` is the
    earliest ARC-Authentication-Results value, for the DMARC override.
    """

    report_key: ClassVar[str] = "arc"
    result: str
    instances: tuple[ArcInstance, ...] = ()
    oldest_pass: int | None = None
    reason: str = ""
    remote_ip: str = ""
    aar1: str = ""

    @property
    def count(self) -> int:
        """N: the highest instance present (0 without ARC headers)."""
        return max((i.instance for i in self.instances), default=0)

    @property
    def newest(self) -> ArcInstance | None:
        return max(self.instances, key=lambda i: i.instance) if self.instances else None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "oldest_pass": self.oldest_pass, "reason": self.reason or None,
                "chain": [i.to_json() for i in sorted(self.instances, key=lambda i: i.instance)]}


@dataclass(frozen=True, slots=True)
class ArcSealing:
    """What the arc-seal stage did: the set it added (i, cv=, signer), or why it added none."""

    report_key: ClassVar[str] = "arc_seal"
    sealed: bool
    instance: int = 0
    cv: str = ""
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        if not self.sealed:
            return {"sealed": False, "note": self.note}
        return {"sealed": True, "i": self.instance, "cv": self.cv, "d": self.domain, "s": self.selector,
                "algorithm": self.algorithm}
