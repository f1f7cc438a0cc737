"""Delete every incoming Authentication-Results header that claims to be ours.

A forged A-R with our authserv-id would otherwise reach the user as if we had written it
(OpenDKIM #185: deleting in ascending order renumbers the rest and lets one survive). We delete
from the highest occurrence down, so each DeleteHeader still points at the header it means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailwarden.authres.headers import authserv_id
from mailwarden.core.decisions import EMPTY, DeleteHeader, OutcomeView, StageResult
from mailwarden.core.model import Header, Transaction
from mailwarden.core.pipeline import Phase

AR = "authentication-results"


@dataclass(slots=True)
class AuthresStrip:
    ids: frozenset[str]
    name: str = "authres-strip"
    phase: Phase = Phase.MESSAGE

    @classmethod
    def build(cls, ours: str, others: Iterable[str] = ()) -> AuthresStrip:
        return cls(frozenset(i.strip().rstrip(".").lower() for i in (ours, *others) if i.strip()))

    def applies(self, tx: Transaction) -> bool:
        return bool(self.ids)

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        edits = forged_deletes(tx.message.headers, self.ids)
        if not edits:
            return EMPTY
        note = f"removed {len(edits)} Authentication-Results claiming our authserv-id"
        return StageResult(edits=edits, notes=(note,))


def forged_deletes(headers: Iterable[Header], ids: frozenset[str]) -> list[DeleteHeader]:
    occurrences: list[tuple[int, str]] = []
    n = 0
    for h in headers:
        if h.name.lower() != AR:
            continue
        n += 1
        if claims(h.value, ids):
            occurrences.append((n, h.name))
    return [DeleteHeader(name, occ) for occ, name in reversed(occurrences)]


def claims(value: str, ids: frozenset[str]) -> bool:
    found = authserv_id(value)
    return found is not None and found in ids
