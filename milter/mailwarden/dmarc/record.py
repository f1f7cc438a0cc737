"""DMARC policy records (RFC 7489 section 6.3, RFC 9989 additions np=, psd=, t=).

A record is parsed leniently where the RFC allows it: unknown tags are ignored, a bad value of an
optional tag falls back to its default. A bad p= (or sp=) makes the record unusable unless it
carries a valid rua=, in which case it counts as p=none (RFC 7489 section 6.6.3 step 6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

POLICIES = ("none", "quarantine", "reject")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$", re.I)


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    p: str
    sp: str = ""  # "" = same as p
    np: str = ""  # "" = same as sp
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    psd: str = ""  # y, n or "" (RFC 9989)
    t: str = "n"  # y: the owner is testing (RFC 9989)
    rua: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # values ignored or defaulted, for notes

    def subdomain_policy(self) -> str:
        return self.sp or self.p

    def nonexistent_policy(self) -> str:
        return self.np or self.sp or self.p


class RecordError(ValueError):
    """The text is a DMARC record (v=DMARC1) but unusable: dmarc=permerror."""


def is_dmarc(text: bytes | str) -> bool:
    """Whether a TXT record is a DMARC record at all: it starts with the exact tag v=DMARC1."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    first = raw.split(";", 1)[0]
    name, eq, value = first.partition("=")
    return bool(eq) and name.strip() == "v" and value.strip() == "DMARC1"


def parse(text: bytes | str, bis: bool = False) -> DmarcRecord:
    """A DmarcRecord from a TXT record that `is_dmarc`; RecordError when it cannot be used.

    `bis`: RFC 9989 rules: a missing p= means p=none, and a bad np= is as bad as a bad sp=."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if not is_dmarc(raw):
        raise RecordError("not a DMARC record (must start with v=DMARC1)")
    tags: dict[str, str] = {}
    problems: list[str] = []
    for part in raw.split(";")[1:]:
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            problems.append(f"ignored malformed tag {part.strip()!r}")
            continue
        if name in tags:
            problems.append(f"ignored repeated tag {name}")
            continue
        tags[name] = value.strip()

    rua = tuple(u.strip() for u in tags.get("rua", "").split(",") if _URI.match(u.strip()))
    p = tags.get("p", "none" if bis else "").lower()
    sp = tags.get("sp", "").lower()
    np = tags.get("np", "").lower()
    bad = "p" if p not in POLICIES else "sp" if sp and sp not in POLICIES else ""
    if not bad and bis and np and np not in POLICIES:
        bad = "np"
    if bad:
        if not rua:
            raise RecordError(f"invalid or missing {bad}= and no valid rua=")
        problems.append(f"invalid or missing {bad}=, treated as p=none (rua= present)")
        p, sp, np = "none", "", ""
    if np and np not in POLICIES:
        problems.append(f"ignored invalid np={np}")
        np = ""
    return DmarcRecord(
        p=p,
        sp=sp,
        np=np,
        adkim=_choice(tags, "adkim", ("r", "s"), "r", problems),
        aspf=_choice(tags, "aspf", ("r", "s"), "r", problems),
        pct=_pct(tags, problems),
        psd=_choice(tags, "psd", ("y", "n", "u"), "", problems).replace("u", ""),
        t=_choice(tags, "t", ("y", "n"), "n", problems),
        rua=rua,
        problems=tuple(problems),
    )


def _choice(
    tags: dict[str, str], name: str, allowed: tuple[str, ...], default: str, problems: list[str]
) -> str:
    value = tags.get(name)
    if value is None:
        return default
    if value.lower() in allowed:
        return value.lower()
    problems.append(f"ignored invalid {name}={value}")
    return default


def _pct(tags: dict[str, str], problems: list[str]) -> int:
    value = tags.get("pct")
    if value is None:
        return 100
    if value.isdigit() and 0 <= int(value) <= 100:
        return int(value)
    problems.append(f"ignored invalid pct={value}")
    return 100
