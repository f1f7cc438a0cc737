"""The arc-seal stage: the pipeline's last, after our A-R header is final and after DKIM signing."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailwarden.arc.chain import collect
from mailwarden.arc.result import ArcResult, ArcSealing
from mailwarden.arc.seal import ArcSealer
from mailwarden.arc.verify import MAX_INSTANCES
from mailwarden.authres.add import header_value
from mailwarden.core.decisions import AddHeader, OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Header, Transaction, strip_brackets
from mailwarden.core.pipeline import Phase
from mailwarden.dkim.sign import SigningKey

# The chain status we vouch for, by our verification result. temperror and permerror: we cannot
# say, so we do not seal (the next hop still sees the incoming chain and can decide itself).
_CV = {"none": "none", "pass": "pass", "fail": "fail"}
_ARC_CLAUSE = re.compile(r"(?:^|;)\s*arc\s*=\s*([a-z]+)", re.I)


@dataclass(frozen=True)
class SealRule:
    key: SigningKey
    directions: frozenset[Direction]
    recipient_domains: tuple[str, ...] = ()

    def matches(self, tx: Transaction) -> bool:
        if tx.direction not in self.directions:
            return False
        if not self.recipient_domains:
            return True
        for rcpt in tx.envelope.rcpts:
            domain = strip_brackets(rcpt).rpartition("@")[2].lower().rstrip(".")
            if any(domain == d or domain.endswith("." + d) for d in self.recipient_domains):
                return True
        return False


@dataclass(frozen=True)
class ArcSeal:
    sealer: ArcSealer
    rules: tuple[SealRule, ...]
    authserv_id: str
    clock: Callable[[], float]
    name: str = "arc-seal"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return any(tx.direction in r.directions for r in self.rules)

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        rule = next((r for r in self.rules if r.matches(tx)), None)
        if rule is None:
            return StageResult(notes=("arc-seal: no sealing rule matches",))
        authres, verdict = self._vouched(tx, outcome)
        cv = _CV.get(verdict, "")
        msg = tx.message
        headers = [*msg.above, *msg.headers]  # as delivered, minus the MTA's hidden Received
        chain = collect(headers)
        if not cv:
            return _unsealed(f"chain status {verdict}")
        if chain.count >= MAX_INSTANCES:
            return _unsealed(f"the chain already has {chain.count} sets")
        if (cv == "none") != (chain.count == 0):
            return _unsealed(f"arc={verdict} does not fit the {chain.count} ARC sets present")
        new = self.sealer.seal(rule.key, chain, cv, authres, headers, msg.body.chunks, self.clock())
        # Each insert at index 0 lands above the one before: insert AAR, AMS, then AS on top.
        edits = [AddHeader(h.name, h.value, index=0) for h in reversed(new)]
        k = rule.key
        done = ArcSealing(True, chain.count + 1, cv, k.domain, k.selector, k.key.algorithm)
        return StageResult(edits=edits, facts=Facts(done),
                           notes=(f"arc-seal i={done.instance} cv={cv} d={k.domain} s={k.selector}",))

    def _vouched(self, tx: Transaction, outcome: OutcomeView) -> tuple[str, str]:
        """The results the set carries (our A-R value) and the chain verdict its cv= states."""
        if tx.direction is Direction.OUTBOUND and not tx.connection.auth_user:
            # A list host re-sending what our MX received, then changed: what our inbound pass
            # found is what the set vouches for, not this pass's view of the changed message.
            # Never from a SASL user, who could write an A-R header claiming anything.
            own = own_results(tx.received_headers, self.authserv_id)
            if own is not None:
                return own
        arc = outcome.facts.get(ArcResult)
        verdict = arc.result if arc is not None else "unknown"
        text = header_value(self.authserv_id, outcome.facts, tx.envelope.sender, tx.connection.helo)
        return text.strip(), verdict


def _unsealed(why: str) -> StageResult:
    return StageResult(facts=Facts(ArcSealing(False, note=why)), notes=(f"arc-seal: not sealed: {why}",))


def own_results(headers: Sequence[Header], authserv_id: str) -> tuple[str, str] | None:
    """The newest Authentication-Results with our authserv-id among `headers` (as received) and
    its arc= result ("none" without one); None when there is no such header."""
    for h in headers:
        if h.name.lower().rstrip(" \t") != "authentication-results":
            continue
        value = h.value.strip()
        if value.split(";", 1)[0].strip().lower() == authserv_id.lower():
            m = _ARC_CLAUSE.search(h.unfolded())
            return value, m.group(1).lower() if m else "none"
    return None
