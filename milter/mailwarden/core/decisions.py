"""What stages decide: verdicts and edits, as values the adapters replay to the MTA."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from mailwarden.core.facts import Facts, FactView


class Action(StrEnum):
    CONTINUE = "continue"
    ACCEPT = "accept"
    REJECT = "reject"
    TEMPFAIL = "tempfail"
    DISCARD = "discard"
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class Reply:
    code: str
    dsn: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.dsn} {self.text}"

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "dsn": self.dsn, "text": self.text}


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reply: Reply | None = None
    reason: str = ""

    @property
    def terminal(self) -> bool:
        """Whether the verdict ends the pipeline.

        Quarantine does not: a held message is released later as it is, so it must still get
        every edit (Authentication-Results, DKIM signature) the stages after it would make.
        """
        return self.action not in (Action.CONTINUE, Action.QUARANTINE)

    @classmethod
    def reject(cls, code: str, dsn: str, text: str) -> Verdict:
        if not code.startswith("5"):
            raise ValueError(f"reject needs a 5xx code, got {code}")
        return cls(Action.REJECT, Reply(code, dsn, text))

    @classmethod
    def tempfail(cls, text: str, code: str = "451", dsn: str = "4.3.0") -> Verdict:
        if not code.startswith("4"):
            raise ValueError(f"tempfail needs a 4xx code, got {code}")
        return cls(Action.TEMPFAIL, Reply(code, dsn, text))

    @classmethod
    def quarantine(cls, reason: str) -> Verdict:
        return cls(Action.QUARANTINE, reason=reason)


CONTINUE = Verdict(Action.CONTINUE)
ACCEPT = Verdict(Action.ACCEPT)
DISCARD = Verdict(Action.DISCARD)


@dataclass(frozen=True, slots=True)
class AddHeader:
    """addheader (index None: bottom) or insheader (index 0: above the MTA's own Received)."""

    name: str
    value: str
    index: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"op": "add_header", "name": self.name, "value": self.value, "index": self.index}


@dataclass(frozen=True, slots=True)
class ChangeHeader:
    """chgheader: replace the n-th (1-based) header of that name; appends when absent."""

    name: str
    occurrence: int
    value: str

    def to_json(self) -> dict[str, Any]:
        return {"op": "change_header", "name": self.name, "occurrence": self.occurrence, "value": self.value}


@dataclass(frozen=True, slots=True)
class DeleteHeader:
    """chgheader with an empty value: delete the n-th (1-based) header of that name."""

    name: str
    occurrence: int

    def to_json(self) -> dict[str, Any]:
        return {"op": "delete_header", "name": self.name, "occurrence": self.occurrence}


@dataclass(frozen=True, slots=True)
class AddRecipient:
    address: str
    params: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"op": "add_rcpt", "address": self.address, "params": self.params}


@dataclass(frozen=True, slots=True)
class DeleteRecipient:
    address: str

    def to_json(self) -> dict[str, Any]:
        return {"op": "delete_rcpt", "address": self.address}


@dataclass(frozen=True, slots=True)
class ChangeSender:
    address: str
    params: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"op": "change_from", "address": self.address, "params": self.params}


Edit = AddHeader | ChangeHeader | DeleteHeader | AddRecipient | DeleteRecipient | ChangeSender


def writable(edit: Edit) -> bool:
    """Whether the MTA can be given this edit: libmilter takes header values as UTF-8 only, and a
    value carrying non-UTF-8 bytes from the message (surrogate escapes) cannot be written."""
    value = getattr(edit, "value", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def edit_summary(edit: Edit) -> str:
    """A short token for the per-message log line, e.g. 'del:Received[2]'."""
    match edit:
        case AddHeader(name=name, index=None):
            return f"add:{name}"
        case AddHeader(name=name, index=index):
            return f"ins:{name}@{index}"
        case ChangeHeader(name=name, occurrence=occ):
            return f"chg:{name}[{occ}]"
        case DeleteHeader(name=name, occurrence=occ):
            return f"del:{name}[{occ}]"
        case AddRecipient(address=addr):
            return f"rcpt+:{addr}"
        case DeleteRecipient(address=addr):
            return f"rcpt-:{addr}"
        case ChangeSender(address=addr):
            return f"from:{addr}"
    raise TypeError(edit)


@dataclass(frozen=True, slots=True)
class StageResult:
    """What one stage returns.

    `facts` are typed values for later stages (core/facts.py: e.g. DKIM results for DMARC); the
    reported ones are also the report's `auth` object. `rules` extends the report's `rules` list.
    `log` lines are logged at info level (e.g. header_checks' Postfix-form lines); `notes` are
    details logged at debug level.
    """

    verdict: Verdict | None = None
    edits: Sequence[Edit] = ()
    facts: Facts = field(default_factory=Facts)
    rules: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[str] = ()
    log: Sequence[str] = ()

    @property
    def auth(self) -> dict[str, Any]:
        """The reported facts in their JSON form."""
        return self.facts.to_json()


EMPTY = StageResult()


class OutcomeView(Protocol):
    """What a stage sees of the outcome so far: it reads; only the pipeline folds results in."""

    @property
    def facts(self) -> FactView: ...

    @property
    def verdict(self) -> Verdict: ...


@dataclass(slots=True)
class Outcome:
    """Everything the pipeline decided for one message."""

    verdict: Verdict = CONTINUE
    edits: list[Edit] = field(default_factory=list)
    facts: Facts = field(default_factory=Facts)
    rules: list[Mapping[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Tracebacks of stages that failed."""
    timings: dict[str, float] = field(default_factory=dict)
    decided_by: str = ""
    finished: bool = False
    """No stage runs any more: a reject, tempfail, discard or accept was decided."""

    def decide(self, verdict: Verdict, stage: str) -> None:
        """Fold one stage's verdict in: the first quarantine reason is kept, a later reject,
        tempfail or discard overrides it, and an accept after a quarantine keeps the hold."""
        if verdict.action is Action.CONTINUE:
            return
        if verdict.action is Action.QUARANTINE:
            if self.verdict.action is not Action.QUARANTINE:
                self.verdict, self.decided_by = verdict, stage
            return
        self.finished = True
        if verdict.action is Action.ACCEPT and self.verdict.action is Action.QUARANTINE:
            return
        self.verdict, self.decided_by = verdict, stage

    @property
    def auth(self) -> dict[str, Any]:
        """The authentication results (the reported facts) in their JSON form."""
        return self.facts.to_json()

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.action.value,
            "reply": self.verdict.reply.to_json() if self.verdict.reply else None,
            "reason": self.verdict.reason or None,
            "decided_by": self.decided_by or None,
            "edits": [e.to_json() for e in self.edits],
            "auth": self.auth,
            "rules": list(self.rules),
            "notes": list(self.notes),
            "log": list(self.log),
            "errors": list(self.errors),
        }
