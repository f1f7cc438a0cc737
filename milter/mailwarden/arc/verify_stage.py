"""The arc-verify stage: the chain as received, as a fact for the A-R header, DMARC and sealing."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailwarden.arc.verify import ArcVerifier
from mailwarden.core.decisions import OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Transaction
from mailwarden.core.pipeline import Phase


@dataclass(frozen=True)
class ArcVerify:
    verifier: ArcVerifier
    directions: frozenset[Direction] = frozenset({Direction.INBOUND})
    """Inbound always; outbound too when outbound mail is sealed (a list host re-sending)."""
    name: str = "arc-verify"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction in self.directions

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        # As received: the previous hop sealed the message before our own rules changed it.
        result = self.verifier.verify(tx.received_headers, tx.message.body.chunks)
        result = replace(result, remote_ip=tx.connection.client_ip)
        note = f"arc={result.result} n={result.count}"
        if result.oldest_pass is not None:
            note += f" oldest-pass={result.oldest_pass}"
        chain = " ".join(f"i={i.instance}:d={i.domain}:cv={i.cv}:{i.seal or '-'}" for i in result.instances)
        note += (f" [{chain}]" if chain else "") + (f": {result.reason}" if result.reason else "")
        return StageResult(facts=Facts(result), notes=(note,))
