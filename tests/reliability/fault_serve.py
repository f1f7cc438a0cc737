"""`mailwarden serve` with stages that fail on purpose, for the fault matrix.

Subject "explode": a stage that raises. Subject "hang": a stage that sleeps HANG seconds, once
per flag file (given as MW_HANG_FLAG: the first message creates it and sleeps, later ones pass).
Subject "slow": sleeps SLOW seconds every time; "pause": PAUSE seconds every time.
Usage: python fault_serve.py --socket unix:PATH
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mailwarden.core.decisions import Outcome, StageResult
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase

HANG = 60.0
SLOW = 6.0
PAUSE = 3.0


@dataclass(frozen=True)
class Faulty:
    name: str = "faulty"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        subject = tx.message.get("Subject")
        return subject is not None and any(w in subject.value for w in ("explode", "hang", "slow", "pause"))

    def run(self, tx: Transaction, outcome: Outcome) -> StageResult:
        subject = tx.message.get("Subject")
        assert subject is not None
        if "explode" in subject.value:
            raise RuntimeError("this stage always fails")
        if "slow" in subject.value or "pause" in subject.value:
            time.sleep(SLOW if "slow" in subject.value else PAUSE)
            return StageResult()
        flag = Path(os.environ.get("MW_HANG_FLAG", "/nonexistent/flag"))
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            time.sleep(HANG)
        return StageResult()


def main() -> None:
    # failing_serve.py's serve, with this stage instead of its own (run as a script: import by path).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    from failing_serve import main as serve_with

    serve_with(Faulty())


if __name__ == "__main__":
    main()
