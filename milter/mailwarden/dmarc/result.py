"""The DMARC result: a fact for the A-R header and enforcement, the dry-run JSON, the log line and
the aggregate report row.

What an RFC 7489 appendix C / RFC 9990 aggregate report row needs is all here:

- `policy_published`: `record` (p, sp, np, pct, adkim, aspf, t, psd, rua) and `policy_domain`,
  the domain it was found at. None when no usable record was found (result none or permerror,
  and a temporary error before the record was read).
- `policy_evaluated`: `disposition` (none, quarantine, reject; our `tempfail` is no disposition a
  report knows: the message was not delivered and the sender retries), `dkim_aligned` and
  `spf_aligned` (pass, fail), and `override` with `Override.report_type` for the
  PolicyOverrideType (sampled_out, local_policy, other) and `reason` as its comment.
- `identifiers` and `auth_results`: `domain` (header_from), and `identifiers`: every DKIM
  signature (domain, selector, result) and the SPF result (domain, scope, result), each with
  whether it aligned with `domain`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from mailwarden.dmarc.record import DmarcRecord


class DmarcStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class Policy(StrEnum):
    """A policy a record publishes (p=, sp=, np=), after subdomain and non-existent rules."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class Disposition(StrEnum):
    """What we do: the policy after pct=/t= and local policy; `tempfail` on a temporary error."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    TEMPFAIL = "tempfail"


class Alignment(StrEnum):
    PASS = "pass"
    FAIL = "fail"


class Override(StrEnum):
    """Why the disposition is weaker than the policy ("" when it is not)."""

    NONE = ""
    SAMPLED_OUT = "sampled_out"  # pct= (RFC 7489 section 6.6.4)
    TESTING = "testing"  # t=y (RFC 9989)
    REPORT_ONLY = "report_only"  # [dmarc] mode = "report"
    EXEMPT_NETWORK = "exempt_network"
    EXEMPT_SENDER_DOMAIN = "exempt_sender_domain"
    EXEMPT_RECIPIENT = "exempt_recipient"
    FROM_HEADER = "from_header"  # not exactly one From address: [dmarc] multi_from decided
    ARC = "arc"  # a trusted sealer's ARC chain ([arc] trusted_sealers: mailwarden.arc.override)

    @property
    def report_type(self) -> str:
        """The aggregate report's PolicyOverrideType ("" for no override)."""
        return _REPORT_TYPE[self]


_REPORT_TYPE = {
    Override.NONE: "",
    Override.SAMPLED_OUT: "sampled_out",
    Override.TESTING: "other",
    Override.REPORT_ONLY: "local_policy",
    Override.EXEMPT_NETWORK: "local_policy",
    Override.EXEMPT_SENDER_DOMAIN: "local_policy",
    Override.EXEMPT_RECIPIENT: "local_policy",
    Override.FROM_HEADER: "local_policy",
    Override.ARC: "local_policy",
}


@dataclass(frozen=True, slots=True)
class AlignedIdentifier:
    """One authenticated identifier and whether it aligned with the From domain.

    `method` is dkim or spf; `result` the method's own result (DkimStatus or SpfStatus value);
    `selector` is DKIM's s=, `scope` SPF's identity (mailfrom or helo)."""

    method: str
    domain: str
    result: str
    aligned: bool
    selector: str = ""
    scope: str = ""

    def label(self) -> str:
        """e.g. `dkim d=example.com s=sel` or `spf mailfrom=example.com`."""
        if self.method == "dkim":
            return f"dkim d={self.domain} s={self.selector}"
        return f"spf {self.scope}={self.domain}"


@dataclass(frozen=True, slots=True)
class DmarcResult:
    report_key: ClassVar[str] = "dmarc"
    result: DmarcStatus
    domain: str = ""  # the RFC5322.From domain
    policy: Policy | None = None  # the policy that applies to `domain` (None: no record)
    disposition: Disposition = Disposition.NONE
    dkim_aligned: Alignment = Alignment.FAIL
    spf_aligned: Alignment = Alignment.FAIL
    org_domain: str = ""
    policy_domain: str = ""  # where the record was found
    published: str = ""  # p= of the record found, for the A-R comment (policy.published-domain-policy)
    override: Override = Override.NONE
    reason: str = ""
    record: DmarcRecord | None = None
    identifiers: tuple[AlignedIdentifier, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result.value,
            "domain": self.domain,
            "policy": self.policy.value if self.policy else None,
            "disposition": self.disposition.value,
            "alignment": {"dkim": self.dkim_aligned.value, "spf": self.spf_aligned.value},
            "org_domain": self.org_domain or None,
            "policy_domain": self.policy_domain or None,
            "override": self.override.value or None,
            "reason": self.reason or None,
        }
