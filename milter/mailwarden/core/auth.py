"""Authentication results shared between stages: DKIM and SPF feed DMARC and the A-R header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Keys under which stages publish these in `StageResult.facts`.
DKIM_FACT = "dkim"  # tuple[DkimResult, ...] in signature order (top down)
SPF_FACT = "spf"  # SpfResult
SPF_HELO_FACT = "spf_helo"  # SpfResult for the HELO identity
DMARC_FACT = "dmarc"  # DmarcResult


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass, fail, neutral, policy, temperror, permerror
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    key_bits: int = 0
    reason: str = ""
    b: str = ""  # the signature's b= value (header.b uses its first 8 characters)
    identity: str = ""  # i=

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "domain": self.domain,
            "selector": self.selector,
            "algorithm": self.algorithm,
            "key_bits": self.key_bits or None,
            "reason": self.reason or None,
        }


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # pass, fail, softfail, neutral, none, temperror, permerror
    domain: str = ""  # the domain checked (MAIL FROM's, or HELO's for the null sender)
    identity: str = "mailfrom"  # mailfrom or helo
    explanation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "domain": self.domain, "identity": self.identity,
                "explanation": self.explanation or None}
