"""One message's walk through the rule classes: matches become verdicts, edits, log lines, report.

The stages feed a Session header by header (or body line by line) in message order, so the first
terminal action in message order wins. Header edits are planned per header and emitted from the
bottom of the message up: an edit never moves a header above it, so every occurrence and index
refers to the headers as received, and deletes of one name come highest occurrence first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mailwarden.core.decisions import (
    ACCEPT,
    DISCARD,
    AddHeader,
    AddRecipient,
    ChangeHeader,
    DeleteHeader,
    DeleteRecipient,
    Edit,
    Verdict,
)
from mailwarden.core.model import Header, Transaction, bracket, strip_brackets
from mailwarden.rules.actions import OUTBOUND_OK, Action, Kw, parse_action, reject_reply, split_header
from mailwarden.rules.loader import RuleSet
from mailwarden.rules.matcher import Hit, Rule

LOG = logging.getLogger("mailwarden.rules")

DEFAULT_BUDGET = 1.0

COUNTS: Counter[str] = Counter()
"""For metrics: `messages_over_budget` (rule matching stopped for a message) and `rules_disabled`
(a rule put aside after repeated regex timeouts). Only ever incremented."""


class Meter:
    """One message's rule-matching time against its budget ([rules] message_budget), shared by
    every rule stage of the message. A regex timeout bounds one header; this bounds the message:
    100 headers that each hit a catastrophic pattern would otherwise cost 100 timeouts."""

    def __init__(
        self, budget: float = DEFAULT_BUDGET, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.budget = budget
        self.clock = clock
        self.spent = 0.0
        self.stopped = False
        self.timeouts: Counter[str] = Counter()  # file:line -> regex timeouts in this message
        self.slowest = (0.0, "", b"")  # seconds, class, text: named only if it comes to that

    def add(self, seconds: float, klass: str, text: bytes) -> bool:
        """Count one lookup of `text` in `klass`; True when it used up the budget (rule matching stops)."""
        self.spent += seconds
        if seconds > self.slowest[0]:
            self.slowest = (seconds, klass, text)
        if self.spent <= self.budget or self.stopped:
            return False
        self.stopped = True
        COUNTS["messages_over_budget"] += 1
        return True

    def culprit(self) -> str:
        """The rule that ate the time: the one that timed out most, else the slowest lookup."""
        if self.timeouts:
            where, count = self.timeouts.most_common(1)[0]
            return f"{where} ({count} regex timeouts)"
        seconds, klass, text = self.slowest
        return f"{klass} on {text[:60]!r} ({seconds:.3f}s)"


class Penalties:
    """Rules whose regex keeps timing out, put aside for a while (process-wide, every message).

    `strikes` timeouts within `window` seconds disable the rule for `hold` seconds, with a warning
    naming its file:line: a pattern that is catastrophic for the mail going around costs every
    message its timeout until someone fixes it.
    """

    def __init__(self, strikes: int = 3, window: float = 60.0, hold: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.strikes, self.window, self.hold, self.clock = strikes, window, hold, clock
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, int], deque[float]] = {}
        self._until: dict[tuple[str, int], float] = {}
        self._disabled: frozenset[tuple[str, int]] = frozenset()

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
            self._until.clear()
            self._disabled = frozenset()

    def disabled(self) -> frozenset[tuple[str, int]]:
        """The (file, line) of every rule now put aside."""
        if not self._until:  # nearly always: no lock, no clock
            return self._disabled
        now = self.clock()
        if any(until <= now for until in self._until.values()):
            with self._lock:
                for key in [k for k, until in self._until.items() if until <= now]:
                    del self._until[key]
                    LOG.warning("%s:%d: regex rule back in use", *key)
                self._disabled = frozenset(self._until)
        return self._disabled

    def timed_out(self, rule: Rule) -> None:
        key = (rule.path, rule.line)
        now = self.clock()
        with self._lock:
            recent = self._recent.setdefault(key, deque())
            recent.append(now)
            while recent and recent[0] < now - self.window:
                recent.popleft()
            if len(recent) < self.strikes or key in self._until:
                return
            del self._recent[key]
            self._until[key] = now + self.hold
            self._disabled = frozenset(self._until)
        COUNTS["rules_disabled"] += 1
        LOG.warning(
            "%s:%d: regex timed out %d times in %.0fs: rule disabled for %.0fs",
            rule.path, rule.line, self.strikes, self.window, self.hold,
        )


PENALTIES = Penalties()


@dataclass(frozen=True)
class Pending:
    """What the whole message gets once every class has run (HOLD, REDIRECT, PASS keep searching)."""

    hold: str | None = None
    redirect: str | None = None
    passed: bool = False
    bcc: tuple[str, ...] = ()
    timeouts: tuple[str, ...] = ()
    meter: Meter = field(default_factory=Meter, compare=False)


@dataclass(frozen=True)
class RuleFacts:
    """The fact the rule stages hand on: the message's rule set (read once, so a reload between
    end of headers and end of message does not split it) and its pending effects so far."""

    ruleset: RuleSet
    pending: Pending


@dataclass
class Session:
    tx: Transaction
    rules: RuleSet
    pending: Pending
    outbound: bool = False
    headers: list[Header] = field(default_factory=list)
    header_edits: dict[int, list[Edit]] = field(default_factory=dict)
    """Planned header edits by position in `headers`, emitted bottom-up by `all_edits()`."""
    edits: list[Edit] = field(default_factory=list)
    """Envelope edits, in the order they were decided."""
    notes: list[str] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)
    verdict: Verdict | None = None
    penalties: Penalties = PENALTIES

    @property
    def stopped(self) -> bool:
        return self.verdict is not None or self.pending.passed or self.pending.meter.stopped

    def lookup(self, klass: str, text: bytes) -> Hit | None:
        meter = self.pending.meter
        if meter.stopped:
            return None
        timeouts: list[Rule] = []
        started = meter.clock()
        hit = self.rules.matcher(klass).lookup(text, timeouts, self.penalties.disabled())
        seconds = meter.clock() - started
        for rule in timeouts:
            where = f"{rule.path}:{rule.line}"
            meter.timeouts[where] += 1
            self.penalties.timed_out(rule)
            self.pending = replace(self.pending, timeouts=(*self.pending.timeouts, where))
            self.notes.append(f"rules: {rule.path}, line {rule.line}: regex timeout: counted as no match")
        if meter.add(seconds, klass, text):
            line = (f"rules: message budget of {meter.budget:g}s spent: rule matching stopped for this"
                    f" message; most time in {meter.culprit()}")
            self.notes.append(line)
            LOG.warning("%s: %s", self.tx.envelope.queue_id or "NOQUEUE", line)
        return hit

    def check_header(self, klass: str, pos: int | None) -> int:
        """Check the header at visible position `pos` of the running copy (None: not editable).

        Returns how far the caller's position moves: always 1, since `headers` is never edited.
        """
        assert pos is not None
        header = self.headers[pos]
        # The name as Matcher.candidates cuts it from the text: no text built for a skipped header.
        if self.rules.matcher(klass).skips(header.name.encode("utf-8", "surrogateescape").lower()):
            return 1
        hit = self.lookup(klass, header.text().encode("utf-8", "surrogateescape"))
        if hit is None:
            return 1
        return self._act(klass, hit, header.text(), pos)

    def check_text(self, klass: str, text: bytes, what: str) -> None:
        """A header or line that cannot be edited (MIME part headers, body lines)."""
        hit = self.lookup(klass, text)
        if hit is not None:
            self._act(klass, hit, text.decode("utf-8", "surrogateescape"), None, what)

    def _act(self, klass: str, hit: Hit, shown: str, pos: int | None, what: str = "header") -> int:
        result = hit.result.decode("utf-8", "surrogateescape")
        action = parse_action(result)
        self.report.append(
            {
                "file": hit.rule.path,
                "line": hit.rule.line,
                "class": klass,
                "header": shown.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                "action": result,
            }
        )
        if self.outbound and action.kw not in OUTBOUND_OK:
            self.log("warning", what, shown, f"unsupported command in {klass}: {action.kw.value}")
            return 1
        return self._apply(action, shown, pos, what)

    def _apply(self, action: Action, shown: str, pos: int | None, what: str) -> int:
        """Carry one action out; the position always moves on by one header."""
        kw = action.kw
        if kw in (Kw.REJECT, Kw.DISCARD):
            self._decide(action, shown, what)
        elif kw in (Kw.HOLD, Kw.PASS, Kw.BCC, Kw.REDIRECT):
            self._pend(action, shown, what)
        elif kw in (Kw.IGNORE, Kw.STRIP, Kw.REPLACE, Kw.PREPEND):
            self._edit_header(action, shown, pos, what)
        elif kw in (Kw.WARN, Kw.INFO):
            self.log("warning" if kw is Kw.WARN else "info", what, shown, action.text)
        elif kw is Kw.FILTER:
            self.log("warning", what, shown, "FILTER has no milter equivalent: ignored")
        elif kw is Kw.UNKNOWN:
            self.log("warning", what, shown, f"unknown command in header_checks map: {action.text[:60]}")
        return 1  # DUNNO and OK do nothing

    def _decide(self, action: Action, shown: str, what: str) -> None:
        """REJECT and DISCARD: the message's verdict, the search stops."""
        if action.kw is Kw.DISCARD:
            self.log("discard", what, shown, action.text)
            self.verdict = DISCARD
            return
        code, dsn, reply = reject_reply(action.text)
        self.log("reject", what, shown, f"{dsn} {reply}")
        if code.startswith("4"):
            self.verdict = Verdict.tempfail(reply, code=code, dsn=dsn)
        else:
            self.verdict = Verdict.reject(code, dsn, reply)

    def _pend(self, action: Action, shown: str, what: str) -> None:
        """HOLD, PASS, BCC and REDIRECT: effects on the whole message, applied by `finish`."""
        kw, text, pending = action.kw, action.text, self.pending
        if kw is Kw.HOLD:
            if pending.hold is None:
                self.log("hold", what, shown, text)
                self.pending = replace(pending, hold=text or "held by header_checks")
        elif kw is Kw.PASS:
            self.log("pass", what, shown, text)
            self.pending = replace(pending, passed=True)
        elif "@" not in text:
            self.log("warning", what, shown, f"bad {kw.value} address: {text}")
        elif kw is Kw.BCC:
            self.log("bcc", what, shown, text)
            if text not in self.tx.envelope.rcpts and text not in pending.bcc:
                self.pending = replace(pending, bcc=(*pending.bcc, text))
                self.edits.append(AddRecipient(bracket(text)))
        else:
            self.log("redirect", what, shown, text)
            self.pending = replace(pending, redirect=text)

    def _edit_header(self, action: Action, shown: str, pos: int | None, what: str) -> None:
        """IGNORE, STRIP, REPLACE and PREPEND: only a top-level header can be edited from a milter."""
        kw, text = action.kw, action.text
        if pos is None:
            self.log("warning", what, shown, f"{kw.value} of a MIME part header is not possible in a milter")
            return
        header = self.headers[pos]
        if kw in (Kw.IGNORE, Kw.STRIP):
            if kw is Kw.STRIP:
                self.log("strip", what, shown, text)
            self._plan(pos, DeleteHeader(header.name, self._occurrence(pos)))
            return
        parts = split_header(text, folded=kw is Kw.REPLACE)
        if parts is None:
            self.log("warning", what, shown, f"bad {kw.value} header text: {text[:60]}")
            return
        name, value = parts
        if kw is Kw.PREPEND:
            self.log("prepend", what, shown, text)
            self._plan(pos, AddHeader(name, value, self._insert_index(pos)))
            return
        self.log("replace", what, shown, text)
        if name == header.name:
            self._plan(pos, ChangeHeader(name, self._occurrence(pos), value))
        else:
            self._plan(pos, DeleteHeader(header.name, self._occurrence(pos)))
            self._plan(pos, AddHeader(name, value, self._insert_index(pos)))

    def _plan(self, pos: int, edit: Edit) -> None:
        self.header_edits.setdefault(pos, []).append(edit)

    def _insert_index(self, pos: int) -> int:
        # insheader counts headers inserted above the MTA's hidden Received, then that header.
        return len(self.tx.message.above) + 1 + pos

    def all_edits(self) -> list[Edit]:
        """Header edits bottom-up, then envelope edits."""
        ordered = [e for pos in sorted(self.header_edits, reverse=True) for e in self.header_edits[pos]]
        return ordered + self.edits

    def _occurrence(self, pos: int) -> int:
        lname = self.headers[pos].name.lower()
        return 1 + sum(1 for h in self.headers[:pos] if h.name.lower() == lname)

    def log(self, action: str, what: str, shown: str, text: str) -> None:
        """A log line in cleanup_act_log()'s form."""
        tx = self.tx
        conn = tx.connection
        qid = tx.envelope.queue_id or "NOQUEUE"
        rcpt = tx.envelope.rcpts[0] if tx.envelope.rcpts else ""
        line = (
            f"{qid}: {action}: {what} {shown[:200]} from {conn.client_name or 'unknown'}[{conn.client_ip}];"
            f" from=<{tx.envelope.sender}> to=<{strip_brackets(rcpt)}> proto=ESMTP helo=<{conn.helo}>"
        )
        self.notes.append(f"{line}: {text}" if text else line)


def finish(tx: Transaction, pending: Pending) -> tuple[Verdict | None, list[Edit]]:
    """The message-wide effects, once no class can reject any more."""
    edits: list[Edit] = []
    if pending.redirect is not None:
        target = pending.redirect
        for rcpt in tx.envelope.rcpts:
            edits.append(DeleteRecipient(rcpt))
        edits.append(AddRecipient(bracket(target)))
    if pending.hold is not None:
        return Verdict.quarantine(pending.hold), edits
    if pending.passed:
        return ACCEPT, edits
    return None, edits
