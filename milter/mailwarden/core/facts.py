"""Facts: typed values one stage hands to later ones (DKIM results to DMARC, all to the A-R header).

A fact is an immutable value (a frozen dataclass), found by its type: `facts.get(DkimResults)` is
a `DkimResults` or None, never something to check with isinstance. A stage returns its facts in
`StageResult.facts`; the pipeline alone folds them into the outcome, where a later fact of a type
replaces an earlier one (a trusted upstream SPF result replaces our own). Stages read them through
`FactView`, which has no way to change them.

A fact with a `report_key` class attribute and a `to_json()` method is reported: the dry-run
JSON's `auth` object is `Facts.to_json()`, one entry per such fact, in the order the facts came.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar, cast

F = TypeVar("F")


class FactView(Protocol):
    """What a stage may do with the facts of earlier stages: read them."""

    def get(self, kind: type[F]) -> F | None: ...

    def __contains__(self, kind: object) -> bool: ...

    def __iter__(self) -> Iterator[object]: ...


class Facts:
    """Facts by type, in the order their types first appeared."""

    __slots__ = ("_by_type",)

    def __init__(self, *values: object) -> None:
        self._by_type: dict[type, object] = {}
        self.update(values)

    def get(self, kind: type[F]) -> F | None:
        return cast("F | None", self._by_type.get(kind))

    def update(self, values: Iterable[object]) -> None:
        """Fold facts in (the pipeline's job): a fact replaces the one of its type."""
        for value in values:
            self._by_type[type(value)] = value

    def __contains__(self, kind: object) -> bool:
        return kind in self._by_type

    def __iter__(self) -> Iterator[object]:
        return iter(self._by_type.values())

    def to_json(self) -> dict[str, Any]:
        """The reported facts (those with a `report_key`) as JSON values, by key."""
        return {type(f).report_key: f.to_json() for f in self if hasattr(type(f), "report_key")}  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self._by_type)

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Facts) and self._by_type == other._by_type

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Facts({', '.join(map(repr, self))})"
