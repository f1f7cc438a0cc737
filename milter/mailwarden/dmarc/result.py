"""The DMARC evaluation result other stages (A-R header, enforcement) and dry-run read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailwarden.dmarc.record import DmarcRecord


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # pass, fail, none, temperror, permerror
    domain: str = ""  # the RFC5322.From domain
    policy: str = ""  # the policy that applies to `domain`: none, quarantine, reject ("" when none)
    disposition: str = "none"  # none, quarantine, reject, tempfail: what we do
    dkim_aligned: str = "fail"  # pass or fail
    spf_aligned: str = "fail"
    org_domain: str = ""
    policy_domain: str = ""  # where the record was found
    published: str = ""  # p= of the record found (policy.published-domain-policy)
    override: str = ""  # why the disposition is not the policy: sampled_out, local_policy, ...
    reason: str = ""
    record: DmarcRecord | None = None  # the record found, for reports (its sp, pct, fo, rua, ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "domain": self.domain,
            "policy": self.policy or None,
            "disposition": self.disposition,
            "alignment": {"dkim": self.dkim_aligned, "spf": self.spf_aligned},
            "org_domain": self.org_domain or None,
            "policy_domain": self.policy_domain or None,
            "override": self.override or None,
            "reason": self.reason or None,
        }
