"""Take the SPF result from a trusted upstream host instead of our own check.

Behind a gateway that already checked SPF, our client is the gateway, so our own check means
nothing. Only an Authentication-Results header (or Received-SPF with receiver=) whose authserv-id
is configured as trusted is read, and only the topmost one: below it anybody could have written.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.authres.headers import authserv_id, received_spf, results
from mailwarden.core.auth import SpfResult, SpfScope, SpfStatus
from mailwarden.core.decisions import EMPTY, OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Header, Transaction, strip_brackets
from mailwarden.core.pipeline import Phase
from mailwarden.spf.query import RESULTS


@dataclass(slots=True)
class SpfUpstream:
    trusted: frozenset[str]
    name: str = "spf-upstream"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return bool(self.trusted) and tx.direction is Direction.INBOUND

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        found = upstream_spf(tx.message.headers, self.trusted)
        if found is None:
            return EMPTY
        return StageResult(facts=Facts(found),
                           notes=(f"spf={found.result} taken from {found.explanation}",))


def upstream_spf(headers: list[Header], trusted: frozenset[str]) -> SpfResult | None:
    for h in headers:
        name = h.name.lower()
        if name == "authentication-results":
            aid = authserv_id(h.value)
            if aid not in trusted:
                continue
            for method, result, props in results(h.value):
                if method == "spf" and result in RESULTS:
                    if "smtp.mailfrom" in props:
                        domain = props["smtp.mailfrom"].rpartition("@")[2].lower()
                        return SpfResult(SpfStatus(result), domain, SpfScope.MAILFROM,
                                         f"Authentication-Results of {aid}")
                    if "smtp.helo" in props:
                        return SpfResult(SpfStatus(result), props["smtp.helo"].lower(), SpfScope.HELO,
                                         f"Authentication-Results of {aid}")
        elif name == "received-spf":
            parsed = received_spf(h.value)
            if parsed is None:
                continue
            result, keys = parsed
            receiver = keys.get("receiver", "").rstrip(".").lower()
            if receiver not in trusted or result not in RESULTS:
                continue
            identity = keys.get("identity", "mailfrom").lower()
            if identity == "helo":
                return SpfResult(SpfStatus(result), keys.get("helo", "").lower(), SpfScope.HELO,
                                 f"Received-SPF of {receiver}")
            sender = strip_brackets(keys.get("envelope-from", ""))
            domain = sender.rpartition("@")[2].lower()
            return SpfResult(SpfStatus(result), domain, SpfScope.MAILFROM, f"Received-SPF of {receiver}")
    return None
