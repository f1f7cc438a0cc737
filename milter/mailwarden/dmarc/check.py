"""DMARC for inbound mail at end of message: the result, and the disposition we will apply.

The disposition already includes local policy (report-only mode, exemptions), so the A-R header
can show it; `DmarcEnforce` turns it into a verdict after the header is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mailwarden.core.auth import DkimResults, SpfResult
from mailwarden.core.decisions import OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Transaction, strip_brackets
from mailwarden.core.pipeline import Phase
from mailwarden.core.policy import Network, in_networks
from mailwarden.dmarc.evaluate import Evaluator
from mailwarden.dmarc.from_header import author_domain
from mailwarden.dmarc.result import Disposition, DmarcResult, DmarcStatus, Override, Policy


@dataclass(frozen=True, slots=True)
class LocalPolicy:
    report_only: bool = False
    temperror_tempfail: bool = True
    multi_from: str = "reject"  # reject, quarantine, accept: for a From with no single author domain
    exempt_networks: tuple[Network, ...] = ()
    exempt_sender_domains: frozenset[str] = frozenset()
    exempt_recipients: frozenset[str] = frozenset()

    def exemption(self, tx: Transaction, domain: str) -> Override:
        """Why this message must not be rejected or held (Override.NONE if nothing exempts it)."""
        if self.report_only:
            return Override.REPORT_ONLY
        if self.exempt_networks and in_networks(tx.connection.client_ip, self.exempt_networks):
            return Override.EXEMPT_NETWORK
        labels = domain.split(".")
        if any(".".join(labels[i:]) in self.exempt_sender_domains for i in range(len(labels))):
            return Override.EXEMPT_SENDER_DOMAIN
        for rcpt in tx.envelope.rcpts:
            addr = strip_brackets(rcpt).lower()
            if addr in self.exempt_recipients or "@" + addr.rpartition("@")[2] in self.exempt_recipients:
                return Override.EXEMPT_RECIPIENT
        return Override.NONE


@dataclass(slots=True)
class DmarcCheck:
    evaluator: Evaluator
    local: LocalPolicy = field(default_factory=LocalPolicy)
    name: str = "dmarc"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        author = author_domain(tx.message.headers)
        if author.problem and not author.not_one:
            result = DmarcResult(DmarcStatus.NONE, "", reason=author.problem)
        elif author.problem:
            disposition = {"reject": Disposition.REJECT, "quarantine": Disposition.QUARANTINE}.get(
                self.local.multi_from, Disposition.NONE)
            result = DmarcResult(DmarcStatus.PERMERROR, "", disposition=disposition, reason=author.problem,
                                 override=Override.FROM_HEADER)
        else:
            dkim = outcome.facts.get(DkimResults) or DkimResults()
            result = self.evaluator.evaluate(author.domain, dkim.signatures, outcome.facts.get(SpfResult))
            if result.result is DmarcStatus.TEMPERROR and result.policy is not Policy.NONE:
                # With p=none a fail changes nothing, so neither does a temporary error.
                tempfail = self.local.temperror_tempfail
                result = replace(result, disposition=Disposition.TEMPFAIL if tempfail else Disposition.NONE)
        if result.disposition is not Disposition.NONE:
            why = self.local.exemption(tx, result.domain)
            if why:
                result = replace(result, disposition=Disposition.NONE, override=why)
        note = (f"dmarc={result.result} from={result.domain or '-'} policy={result.policy or '-'}"
                f" disposition={result.disposition}" + (f" ({result.override})" if result.override else "")
                + (f": {result.reason}" if result.reason else ""))
        return StageResult(facts=Facts(result), notes=(note,))

