"""The stage registry: every stage declared once, with what it needs, and the order derived from it.

A `StageSpec` names a stage, the phase it runs in, the facts it `requires` (an enabled stage must
provide them, or the configuration is refused), the facts it `uses` when present (ordering only)
and the facts it `provides`. `after` orders a stage behind others without a fact between them
(the DMARC verdict behind the A-R header it must not keep from a held message). `EVERYTHING`
puts a stage last in its phase (DKIM signing covers the headers as delivered).

The order is a topological sort (graphlib) within each phase; among stages free to go, the one
declared first goes first, so the declaration order reads as the pipeline's order.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mailwarden.core.pipeline import PHASES, Phase, Stage
from mailwarden.errors import ConfigError

Env = TypeVar("Env")

EVERYTHING = "*"
"""In `after`: every other enabled stage of the same phase."""


@dataclass(frozen=True)
class StageSpec(Generic[Env]):
    name: str
    phase: Phase
    build: Callable[[Env], Stage]
    enabled: Callable[[Env], bool]
    key: str = ""
    """The configuration key that turns the stage on ("" when nothing turns it off)."""
    requires: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    why: str = ""
    """One line for `check-config --explain`."""


def resolve(specs: Sequence[StageSpec[Env]], env: Env) -> list[StageSpec[Env]]:
    """The enabled stages in run order; ConfigError when one requires a fact no enabled stage gives.

    Raises graphlib.CycleError for a registry whose declarations contradict each other (a bug,
    not a configuration problem).
    """
    enabled = [s for s in specs if s.enabled(env)]
    problems = _unsatisfied(specs, enabled)
    if problems:
        raise ConfigError(problems)
    rank = {s.name: (PHASES.index(s.phase), i) for i, s in enumerate(enabled)}
    by_name = {s.name: s for s in enabled}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for spec in enabled:
        sorter.add(spec.name, *_predecessors(spec, enabled))
    sorter.prepare()
    order: list[StageSpec[Env]] = []
    ready: set[str] = set()
    while sorter.is_active():
        ready.update(sorter.get_ready())
        name = min(ready, key=rank.__getitem__)
        ready.discard(name)
        order.append(by_name[name])
        sorter.done(name)
    return order


def _predecessors(spec: StageSpec[Env], enabled: Sequence[StageSpec[Env]]) -> list[str]:
    wanted = set(spec.requires) | set(spec.uses)
    before = []
    for other in enabled:
        if other is spec:
            continue
        last = EVERYTHING in spec.after and other.phase is spec.phase and EVERYTHING not in other.after
        if wanted & set(other.provides) or other.name in spec.after or last:
            before.append(other.name)
    return before


def _unsatisfied(specs: Sequence[StageSpec[Env]], enabled: Sequence[StageSpec[Env]]) -> list[str]:
    given = {fact for s in enabled for fact in s.provides}
    problems = []
    for spec in enabled:
        for fact in spec.requires:
            if fact in given:
                continue
            providers = [s.key for s in specs if fact in s.provides and s.key]
            turn_on = " or ".join(f"{k} = true" for k in providers) or "a stage that provides it"
            where = spec.key or spec.name
            problems.append(f"{where}: the {spec.name} stage needs {fact} results: set {turn_on}")
    return problems


def explain(specs: Sequence[StageSpec[Env]], env: Env) -> list[str]:
    """The resolved pipeline, one line per stage in run order, then the stages switched off.

    `needs dkim, spf?`: dkim is required, spf used when some stage gives it."""
    order = resolve(specs, env)
    lines = []
    for spec in order:
        needs = ", ".join([*spec.requires, *(f"{u}?" for u in spec.uses)])
        after = ", ".join("everything" if a == EVERYTHING else a for a in spec.after)
        deps = "; ".join(part for part in (needs and f"needs {needs}", after and f"after {after}",
                                           spec.provides and f"gives {', '.join(spec.provides)}") if part)
        lines.append(f"{spec.phase.value:<9} {spec.name:<23} {deps:<34} {spec.why}".rstrip())
    for spec in specs:
        if spec not in order:
            lines.append(f"{'off':<9} {spec.name:<23} {'':<34} {spec.key or 'not needed'}")
    return lines
