"""Authentication results shared between stages: DKIM and SPF feed DMARC and the A-R header.

These are facts (core/facts.py): `DkimResults` (every signature), `SpfResult` (the identity DMARC
uses) and `SpfHelo` (the HELO identity's own result). Results are enums whose values are the RFC
8601 result keywords, so the A-R header, the dry-run JSON and the log line print them unchanged.
The DMARC result is `mailwarden.dmarc.result.DmarcResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class DkimStatus(StrEnum):
    """RFC 8601 section 2.7.1 dkim= results (`none`: no signature at all)."""

    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    POLICY = "policy"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    NONE = "none"


class SpfStatus(StrEnum):
    """RFC 7208 section 2.6 results, as RFC 8601 section 2.7.2 writes them."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class SpfScope(StrEnum):
    """Which identity was checked (RFC 7208 section 2.3/2.4; aggregate reports' `scope`)."""

    MAILFROM = "mailfrom"
    HELO = "helo"


@dataclass(frozen=True, slots=True)
class DkimResult:
    """One signature's result; `domain` and `selector` are its d= and s=."""

    result: DkimStatus
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    key_bits: int = 0
    reason: str = ""
    b: str = ""  # the signature's b= value (header.b uses its first 8 characters)
    identity: str = ""  # i=

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result.value,
            "domain": self.domain,
            "selector": self.selector,
            "algorithm": self.algorithm,
            "key_bits": self.key_bits or None,
            "reason": self.reason or None,
        }


@dataclass(frozen=True, slots=True)
class DkimResults:
    """The fact: every signature's result, in signature order (top down)."""

    report_key: ClassVar[str] = "dkim"
    signatures: tuple[DkimResult, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        return [sig.to_json() for sig in self.signatures]


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The fact DMARC and the A-R header use: MAIL FROM's result (HELO's for the null sender)."""

    report_key: ClassVar[str] = "spf"
    result: SpfStatus
    domain: str = ""  # the domain checked (MAIL FROM's, or HELO's for the null sender)
    identity: SpfScope = SpfScope.MAILFROM
    explanation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result.value, "domain": self.domain, "identity": self.identity.value,
                "explanation": self.explanation or None}


@dataclass(frozen=True, slots=True)
class SpfHelo:
    """The fact: the HELO identity's own result (RFC 7208 section 2.3), when it was checked."""

    report_key: ClassVar[str] = "spf_helo"
    result: SpfResult

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()
