"""`mailwarden serve` with one extra stage that raises, to test what a failing stage does.

The adapter, libmilter and Postfix are the real ones; only the stage is made to fail, because
no shipped stage fails on purpose. Usage: python failing_serve.py --socket unix:PATH [--config F]
[--user U]
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from mailwarden import logsetup
from mailwarden.adapters.process.serve import serve
from mailwarden.adapters.pymilter import RuntimeHolder
from mailwarden.bootstrap import build_runtime
from mailwarden.config import load
from mailwarden.core.decisions import Outcome, StageResult
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase, Pipeline, Stage


@dataclass(frozen=True)
class Explodes:
    """Raises for messages whose Subject contains 'explode', passes the rest."""

    name: str = "explodes"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        subject = tx.message.get("Subject")
        return subject is not None and "explode" in subject.value

    def run(self, tx: Transaction, outcome: Outcome) -> StageResult:
        raise RuntimeError("this stage always fails")


def main(extra: Stage | None = None) -> None:
    """serve with `extra` (default: Explodes) appended to the configured pipeline."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--config")
    parser.add_argument("--user", help="as serve's --user (USER, no group)")
    args = parser.parse_args()
    config = load(args.config)
    logsetup.setup("info")
    runtime = build_runtime(config)
    stage = extra if extra is not None else Explodes()
    pipeline = Pipeline([*runtime.pipeline.stages, stage], on_error=runtime.pipeline.on_error)
    runtime = dataclasses.replace(runtime, pipeline=pipeline)
    serve(RuntimeHolder(runtime), args.socket, user=args.user)


if __name__ == "__main__":
    main()
