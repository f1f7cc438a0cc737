"""The ordered list of stages, run phase by phase over one transaction.

Phases follow the milter callbacks where a decision can first be made: `envelope` after MAIL FROM
(SPF), `headers` at end of headers (hopcount: the body is never transferred), `message` at end of
message, ending in `end_of_message`, which also refuses edits the MTA cannot take. The dry-run
adapter runs all three in a row, so both adapters get the same outcome. The order of the stages
comes from the registry (core/registry.py, declared in bootstrap.py).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Protocol

from mailwarden.core.decisions import EMPTY, Action, Outcome, OutcomeView, StageResult, Verdict, writable
from mailwarden.core.edits import apply_edits
from mailwarden.core.model import Transaction


class Phase(StrEnum):
    ENVELOPE = "envelope"
    HEADERS = "headers"
    MESSAGE = "message"


PHASES = (Phase.ENVELOPE, Phase.HEADERS, Phase.MESSAGE)


class Stage(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def phase(self) -> Phase:
        """The first callback at which this stage can decide."""
        ...

    def applies(self, tx: Transaction) -> bool:
        """Whether this stage has anything to do for this transaction (e.g. outbound only)."""
        ...

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        """Decide, from the message and the facts and verdict of earlier stages."""
        ...


def default_error_verdict(stage: str) -> Verdict:
    return Verdict.tempfail(f"temporary failure in mail filter ({stage})", dsn="4.3.0")


class Pipeline:
    def __init__(
        self,
        stages: Sequence[Stage],
        on_error: Callable[[str], Verdict] = default_error_verdict,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.stages = tuple(stages)
        self.on_error = on_error
        self._clock = clock
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stage names: {names}")
        # A stage's phase is fixed: each callback walks only its own stages.
        self._by_phase = {p: tuple(s for s in self.stages if s.phase is p) for p in PHASES}

    def has_phase(self, phase: Phase) -> bool:
        """Whether any stage runs in `phase` (the milter need not wait at a phase with none)."""
        return bool(self._by_phase[phase])

    def run_phase(self, tx: Transaction, phase: Phase, outcome: Outcome) -> Outcome:
        """Run the stages of one phase, folding their results into `outcome`.

        Stops at the first reject, tempfail, discard or accept (`Outcome.decide`). Edits are
        applied to `tx` as they come, so later stages see the message as it will be delivered.
        """
        for stage in self._by_phase[phase]:
            if outcome.finished:
                break
            if not stage.applies(tx):
                continue
            started = self._clock()
            try:
                result = stage.run(tx, outcome)
            except Exception:  # a failing stage must never become a traceback to the MTA
                outcome.decide(self.on_error(stage.name), stage.name)
                outcome.finished = True
                outcome.errors.append(f"stage {stage.name} failed:\n{traceback.format_exc()}")
                break
            finally:
                outcome.timings[stage.name] = self._clock() - started
            self._fold(tx, stage.name, result, outcome)
        return outcome

    def end_of_message(self, tx: Transaction, outcome: Outcome) -> Outcome:
        """The message phase (unless a verdict was reached earlier), then the last check before
        the verdict goes to the MTA: every edit must be one it can be given."""
        if not outcome.finished:
            self.run_phase(tx, Phase.MESSAGE, outcome)
        if outcome.verdict.action in (Action.CONTINUE, Action.ACCEPT, Action.QUARANTINE):
            unwritable = [e for e in outcome.edits if not writable(e)]
            if unwritable:
                # pymilter can only write UTF-8: refuse rather than deliver a half-edited message.
                outcome.errors.append(f"cannot write non-UTF-8 header value: {unwritable[0]}")
                outcome.verdict = Verdict.tempfail("cannot write non-UTF-8 header value")
                outcome.finished = True
        return outcome

    def run(self, tx: Transaction, outcome: Outcome | None = None) -> Outcome:
        """Every phase in order: what the milter does over a whole message."""
        outcome = outcome if outcome is not None else Outcome()
        self.run_phase(tx, Phase.ENVELOPE, outcome)
        self.run_phase(tx, Phase.HEADERS, outcome)
        return self.end_of_message(tx, outcome)

    @staticmethod
    def _fold(tx: Transaction, name: str, result: StageResult, outcome: Outcome) -> None:
        if result is EMPTY:  # the common "nothing to do" answer
            return
        if result.edits:
            apply_edits(tx, result.edits)
            outcome.edits.extend(result.edits)
        outcome.facts.update(result.facts)
        if result.rules:
            outcome.rules.extend(result.rules)
        if result.notes:
            outcome.notes.extend(result.notes)
        if result.log:
            outcome.log.extend(result.log)
        if result.verdict is not None:
            outcome.decide(result.verdict, name)
