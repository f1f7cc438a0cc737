"""The DKIM sign stage: the pipeline's last stage, so the signature covers the headers delivered."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mailwarden.core.decisions import AddHeader, OutcomeView, StageResult
from mailwarden.core.facts import Facts
from mailwarden.core.model import Direction, Header, Transaction
from mailwarden.core.pipeline import Phase
from mailwarden.dkim.sign import Signer, SigningKey

# RFC 5322 2.1.1; Postfix's smtp client (smtp_line_length_limit = 998) folds longer lines.
LINE_LIMIT = 998


@dataclass(frozen=True)
class Rule:
    patterns: tuple[str, ...]
    identity: str  # header_from or envelope
    keys: tuple[SigningKey, ...]

    def __post_init__(self) -> None:
        # The patterns as domain_matches compares them, once per config instead of per message.
        object.__setattr__(self, "_patterns", tuple(p.lower().rstrip(".") for p in self.patterns))

    def matches(self, domain: str) -> bool:
        return any(_normal_matches(p, domain) for p in self._patterns)  # type: ignore[attr-defined]


def domain_matches(pattern: str, domain: str) -> bool:
    """"example.com" that domain only, "*.example.com" its subdomains, "*" every domain."""
    return _normal_matches(pattern.lower().rstrip("."), domain)


def _normal_matches(pattern: str, domain: str) -> bool:
    if pattern == "*":
        return bool(domain)
    if pattern.startswith("*."):
        return domain.endswith(pattern[1:])
    return domain == pattern


_SIMPLE_FROM = re.compile(r"^(?:[^<>\"@,;:]*<)?[A-Za-z0-9._%+=/-]+@([A-Za-z0-9.-]+)>?$")


def from_domain(headers: Sequence[Header]) -> str:
    """The domain of the single From address, '' when there is not exactly one."""
    froms = [h for h in headers if h.name.lower() == "from"]
    if len(froms) != 1:
        return ""
    text = froms[0].unfolded()
    m = _SIMPLE_FROM.match(text)
    if m:  # the common `Name <a@b>` / `a@b` shapes, without email.utils' slow parser
        return m.group(1).lower().rstrip(".")
    addrs = email.utils.getaddresses([text])
    if len(addrs) != 1 or "@" not in addrs[0][1]:
        return ""
    return addrs[0][1].rpartition("@")[2].lower().rstrip(".")


class _Scan:
    """Watches raw body chunks for what Postfix's smtp client may change after signing.

    Cheap on purpose (it runs on every signed message): isascii() is one vectorized pass, and a
    line over LINE_LIMIT must contain a whole aligned window of half that size without LF, so
    only windows are probed with find() and only a suspicious one is measured exactly.
    """

    WINDOW = LINE_LIMIT // 2

    def __init__(self) -> None:
        self.eight_bit = False
        self.longest = 0
        self._line = 0  # length of the unfinished line carried from the previous chunk

    def feed(self, chunk: bytes) -> None:
        if not self.eight_bit and not chunk.isascii():
            self.eight_bit = True
        first = chunk.find(b"\n")
        if first < 0:
            self._line += len(chunk)
            return
        self._note(self._line + first)
        last = chunk.rfind(b"\n")
        self._line = len(chunk) - last - 1
        w = self.WINDOW
        for start in range(first + 1, last - w + 1, w):
            if chunk.find(b"\n", start, start + w) < 0:
                begin = chunk.rfind(b"\n", 0, start) + 1
                self._note(chunk.find(b"\n", start) - begin)

    def _note(self, length: int) -> None:
        self.longest = max(self.longest, length - 1)  # the line's CR (CRLF ends) does not count

    def finish(self) -> None:
        self.longest = max(self.longest, self._line)

    def wrap(self, chunks: Callable[[], Iterator[bytes]]) -> Callable[[], Iterator[bytes]]:
        def gen() -> Iterator[bytes]:
            for chunk in chunks():
                self.feed(chunk)
                yield chunk
            self.finish()

        return gen


@dataclass(frozen=True, slots=True)
class DkimSigning:
    """The fact (reported only): the (domain, selector, algorithm) of each signature added, and
    warnings about what could break them; or, with nothing signed, why not."""

    report_key: ClassVar[str] = "dkim_sign"
    signed: tuple[tuple[str, str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.note:
            return {"signed": [], "note": self.note}
        signed = [{"domain": d, "selector": s, "algorithm": a} for d, s, a in self.signed]
        return {"signed": signed, "warnings": list(self.warnings)}


@dataclass(frozen=True)
class DkimSign:
    signer: Signer
    rules: tuple[Rule, ...]
    clock: Callable[[], float]
    warn: bool = True
    name: str = "dkim-sign"
    phase: Phase = Phase.MESSAGE

    def applies(self, tx: Transaction) -> bool:
        return tx.direction is Direction.OUTBOUND and bool(self.rules)

    def run(self, tx: Transaction, outcome: OutcomeView) -> StageResult:
        msg = tx.message
        headers = [*msg.above, *msg.headers]  # as delivered, minus the MTA's hidden Received
        rule, domain = self._rule(tx, headers)
        if rule is None:
            why = f"no signing rule for {domain!r}" if domain else "no single From address to sign for"
            return StageResult(facts=Facts(DkimSigning(note=why)), notes=[f"dkim-sign: {why}"])
        scan = _Scan()
        chunks = scan.wrap(msg.body.chunks) if self.warn else msg.body.chunks
        values = self.signer.sign(rule.keys, headers, chunks, self.clock())
        # Each insert at index 0 lands above the previous one: insert the last key first so the
        # headers read in key order from the top.
        edits = [AddHeader("DKIM-Signature", v, index=0) for v in reversed(values)]
        warnings = self._warnings(scan, headers) if self.warn else []
        signed = tuple((k.domain, k.selector, k.key.algorithm) for k in rule.keys)
        notes = [f"dkim-sign d={k.domain} s={k.selector} a={k.key.algorithm}" for k in rule.keys]
        notes += [f"dkim-sign warning: {w}" for w in warnings]
        return StageResult(edits=edits, facts=Facts(DkimSigning(signed, tuple(warnings))), notes=notes)

    def _rule(self, tx: Transaction, headers: Sequence[Header]) -> tuple[Rule | None, str]:
        domain = ""
        for rule in self.rules:
            if rule.identity == "envelope":
                domain = tx.envelope.sender.rpartition("@")[2].lower().rstrip(".")
            else:
                domain = from_domain(headers)
            if domain and rule.matches(domain):
                return rule, domain
        return None, domain

    @staticmethod
    def _warnings(scan: _Scan, headers: Sequence[Header]) -> list[str]:
        out = []
        if scan.eight_bit:
            out.append("8-bit body: Postfix converts it to quoted-printable for a next hop without "
                       "8BITMIME, breaking the signature; set disable_mime_output_conversion = yes "
                       "(contrib/docs/dkim.md)")
        if scan.longest > LINE_LIMIT:
            out.append(f"a body line of {scan.longest} bytes exceeds {LINE_LIMIT}: Postfix's smtp "
                       "client folds it, breaking the signature; set smtp_line_length_limit = 0")
        for h in headers:
            if len(h.value) < LINE_LIMIT - len(h.name):
                continue
            longest = max(len(line) for line in h.raw().split(b"\r\n"))
            if longest > LINE_LIMIT:
                out.append(f"header {h.name} has a line of {longest} bytes over {LINE_LIMIT}")
        return out
