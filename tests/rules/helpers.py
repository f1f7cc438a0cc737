"""Rule-pack fixtures for the rules tests: write packs, build a runtime, run one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mailwarden import config as config_mod
from mailwarden.bootstrap import BuildEnv
from mailwarden.core.decisions import Outcome
from mailwarden.core.model import Body, Connection, Direction, Envelope, Header, Message, Transaction
from mailwarden.core.pipeline import Pipeline
from mailwarden.resolver.static import StaticZone
from mailwarden.rules.build import rule_stages


def write_packs(base: Path, packs: Mapping[str, str | bytes]) -> Path:
    """packs: {"header_checks/10-x.pcre": text}; returns `base`, a rules directory."""
    for rel, text in packs.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return base


class RulesRuntime:
    """Only the rule stages, so other features' edits never mix into what a test looks at."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline


def config_for(base: Path, extra: str = "") -> config_mod.Config:
    # Only our packs: the shipped ones would add their own matches.
    return config_mod.parse(f"[rules]\ndefault_packs = false\ndirs = [{str(base)!r}]\n{extra}\n")


def runtime(base: Path, packs: Mapping[str, str | bytes], extra: str = "") -> RulesRuntime:
    write_packs(base, packs)
    cfg = config_for(base, extra)
    env = BuildEnv(cfg, StaticZone.from_text(""), "mx.rcpt.test", base)
    return RulesRuntime(Pipeline(rule_stages(env)))


def transaction(
    headers: Sequence[tuple[str, str]],
    body: bytes = b"hello\r\n",
    direction: Direction = Direction.INBOUND,
    rcpts: Sequence[str] = ("<bob@rcpt.test>",),
) -> Transaction:
    message = Message([Header(n, v) for n, v in headers], Body.from_bytes(body))
    return Transaction(
        Connection("192.0.2.1", 25, "mx.sender.test", "mx.sender.test"),
        Envelope("<alice@sender.test>", (), tuple(rcpts), "4QID"),
        message,
        direction,
    )


def run(rt: RulesRuntime, tx: Transaction) -> Outcome:
    return rt.pipeline.run(tx)


def names(tx: Transaction) -> list[str]:
    return [f"{h.name}:{h.value}" for h in tx.message.headers]
