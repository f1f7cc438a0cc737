"""mime_header_checks (part headers), nested_header_checks and body_checks, in one walk of the body.

One pass in message order keeps Postfix's "first terminal action wins" across the three classes.
This is also the last rule stage: it turns the message-wide effects (HOLD, REDIRECT, PASS) into
the verdict and recipient edits once nothing can reject any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwarden.core.decisions import OutcomeView, StageResult
from mailwarden.core.model import Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.mime import body_lines, content_type, walk
from mailwarden.rules.session import finish
from mailwarden.rules.stages.common import DEFAULT_OPTIONS, RuleOptions, result, start

BODY_CLASSES = ("mime_header_checks", "nested_header_checks", "body_checks")


@dataclass(frozen=True, eq=False)
class BodyChecks:
    holder: RuleSetHolder
    options: RuleOptions = DEFAULT_OPTIONS
    name: str = "body_checks"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return True

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        session = start(self.holder, tx, outcome, options=self.options)
        rules = session.rules
        if not session.stopped and any(len(rules.matcher(k)) for k in BODY_CLASSES):
            ctype = tx.message.get("Content-Type")
            top = ctype.value.encode("utf-8", "surrogateescape") if ctype is not None else None
            wanted = {k for k in BODY_CLASSES if len(rules.matcher(k))}
            opts = self.options
            # Without body_checks, only the parts of a multipart or message/rfc822 body have
            # anything to check: a single-part body need not be read at all.
            structured = top is not None and content_type(top)[0].startswith(("multipart/", "message/"))
            if "body_checks" in wanted or structured:
                lines = body_lines(tx.message.body.chunks())
                for item in walk(top, lines, opts.body_size_limit, opts.line_length_limit):
                    if item.klass in wanted:
                        session.check_text(item.klass, item.text, item.what)
                        if session.stopped:
                            break
        verdict = None
        if session.verdict is None:
            verdict, edits = finish(tx, session.pending)
            session.edits.extend(edits)
        return result(session, self.options, verdict)
