"""header_checks result text -> what it does, as cleanup_message.c `cleanup_act` reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mailwarden.rules.postmap import is_header


class Kw(StrEnum):
    REJECT = "REJECT"
    DISCARD = "DISCARD"
    HOLD = "HOLD"
    IGNORE = "IGNORE"
    STRIP = "STRIP"
    REPLACE = "REPLACE"
    PREPEND = "PREPEND"
    WARN = "WARN"
    INFO = "INFO"
    DUNNO = "DUNNO"
    OK = "OK"
    PASS = "PASS"
    REDIRECT = "REDIRECT"
    BCC = "BCC"
    FILTER = "FILTER"
    UNKNOWN = "?"


# smtp_header_checks (our outbound class) only know these; the others are logged as unsupported.
OUTBOUND_OK = frozenset({Kw.WARN, Kw.INFO, Kw.REPLACE, Kw.PREPEND, Kw.STRIP, Kw.IGNORE, Kw.DUNNO, Kw.OK})
_DSN = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class Action:
    kw: Kw
    text: str
    """The optional text after the keyword (REJECT reason, REPLACE header, REDIRECT address, ...)."""


def parse_action(result: str) -> Action:
    stripped = result.lstrip(" \t")
    word, _, rest = stripped.partition(" ")
    if "\t" in word:
        word, _, more = word.partition("\t")
        rest = more + (" " + rest if rest else "")
    try:
        kw = Kw(word.upper())
    except ValueError:
        kw = Kw.UNKNOWN
    if kw is Kw.UNKNOWN:
        return Action(kw, stripped)
    return Action(kw, rest.lstrip(" \t"))


def reject_reply(text: str) -> tuple[str, str, str]:
    """(code, dsn, text) for REJECT [x.y.z] [text]: 550 5.7.1 by default, 451 for a 4.x.y code."""
    m = _DSN.match(text)
    if m is None:
        return "550", "5.7.1", text or "message content rejected"
    klass = m.group(1)
    dsn = f"{klass}.{m.group(2)}.{m.group(3)}"
    rest = text[m.end() :] or "message content rejected"
    if klass == "2":
        dsn = "4" + dsn[1:]  # Postfix refuses a success code here and makes it a temporary one
        klass = "4"
    return ("451" if klass == "4" else "550"), dsn, rest


def split_header(text: str, folded: bool = False) -> tuple[str, str] | None:
    """REPLACE/PREPEND text `Name: value` -> (name, value with its leading space), or None if invalid.

    PREPEND text is one line; a REPLACE result may keep the folds $n copied from the header.
    """
    raw = text.encode("utf-8", "surrogateescape")
    if not is_header(raw) or ("\n" in text and not folded):
        return None
    if any(not rest[:1].isspace() for rest in text.split("\n")[1:]):
        return None
    name, _, value = text.partition(":")
    return name.rstrip(" \t"), value


def load_warnings(result: bytes) -> str | None:
    """A warning for a rule whose literal result will never act: FILTER, unknown keywords."""
    action = parse_action(result.decode("utf-8", "surrogateescape"))
    if action.kw is Kw.FILTER:
        return "FILTER has no milter equivalent: this rule will be ignored"
    if action.kw is Kw.UNKNOWN:
        return f'unknown command in header_checks map: "{action.text[:40]}"'
    if action.kw in (Kw.REPLACE, Kw.PREPEND) and split_header(action.text) is None:
        return f"bad {action.kw.value} header text: this rule will be ignored"
    if action.kw in (Kw.REDIRECT, Kw.BCC) and "@" not in action.text:
        return f"{action.kw.value} needs user@domain: this rule will be ignored"
    return None
