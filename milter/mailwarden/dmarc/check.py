"""DMARC for inbound mail at end of message: the result, and the disposition we will apply.

The disposition already includes local policy (report-only mode, exemptions), so the A-R header
can show it; `DmarcEnforce` turns it into a verdict after the header is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mailwarden.core.auth import DKIM_FACT, DMARC_FACT, SPF_FACT, DkimResult, SpfResult
from mailwarden.core.decisions import Outcome, StageResult
from mailwarden.core.model import Direction, Transaction, strip_brackets
from mailwarden.core.pipeline import Phase
from mailwarden.core.policy import Network, in_networks
from mailwarden.dmarc.evaluate import Evaluator
from mailwarden.dmarc.from_header import author_domain
from mailwarden.dmarc.result import DmarcResult


@dataclass(frozen=True, slots=True)
class LocalPolicy:
    report_only: bool = False
    temperror_tempfail: bool = True
    multi_from: str = "reject"  # reject, quarantine, accept
    exempt_networks: tuple[Network, ...] = ()
    exempt_sender_domains: frozenset[str] = frozenset()
    exempt_recipients: frozenset[str] = frozenset()

    def exemption(self, tx: Transaction, domain: str) -> str:
        """Why this message must not be rejected or held ("" if nothing exempts it)."""
        if self.report_only:
            return "report_only"
        if self.exempt_networks and in_networks(tx.connection.client_ip, self.exempt_networks):
            return "exempt_network"
        labels = domain.split(".")
        if any(".".join(labels[i:]) in self.exempt_sender_domains for i in range(len(labels))):
            return "exempt_sender_domain"
        for rcpt in tx.envelope.rcpts:
            addr = strip_brackets(rcpt).lower()
            if addr in self.exempt_recipients or "@" + addr.rpartition("@")[2] in self.exempt_recipients:
                return "exempt_recipient"
        return ""


@dataclass(slots=True)
class DmarcCheck:
    evaluator: Evaluator
    local: LocalPolicy = field(default_factory=LocalPolicy)
    name: str = "dmarc"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: Outcome) -> StageResult:
        author = author_domain(tx.message.headers)
        if author.problem:
            disposition = {"reject": "reject", "quarantine": "quarantine"}.get(self.local.multi_from, "none")
            result = DmarcResult("permerror", "", disposition=disposition, reason=author.problem,
                                 override="from_header")
        else:
            dkim = tuple(r for r in outcome.facts.get(DKIM_FACT) or () if isinstance(r, DkimResult))
            spf = outcome.facts.get(SPF_FACT)
            result = self.evaluator.evaluate(author.domain, dkim, spf if isinstance(spf, SpfResult) else None)
            if result.result == "temperror" and result.policy != "none":
                # With p=none a fail changes nothing, so neither does a temporary error.
                result = replace(result, disposition="tempfail" if self.local.temperror_tempfail else "none")
        if result.disposition != "none":
            why = self.local.exemption(tx, result.domain)
            if why:
                result = replace(result, disposition="none", override=why)
        note = (f"dmarc={result.result} from={result.domain or '-'} policy={result.policy or '-'}"
                f" disposition={result.disposition}" + (f" ({result.override})" if result.override else "")
                + (f": {result.reason}" if result.reason else ""))
        return StageResult(facts={DMARC_FACT: result}, auth={"dmarc": result.to_json()}, notes=(note,))

