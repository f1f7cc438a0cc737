"""DMARC policy records (RFC 7489 section 6.3, RFC 9989 additions np=, psd=, t=).

The reporting tags are kept too: rua= and ruf= (URIs, with any !size suffix as written), fo=
(failure reporting options), rf= (failure report formats) and ri= (the aggregate interval).

A record is parsed leniently where the RFC allows it: unknown tags are ignored, a bad value of an
optional tag falls back to its default. A bad p= (or sp=) makes the record unusable unless it
carries a valid rua=, in which case it counts as p=none (RFC 7489 section 6.6.3 step 6).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

POLICIES = ("none", "quarantine", "reject")
FAILURE_OPTIONS = ("0", "1", "d", "s")
REPORT_FORMATS = ("afrf",)
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
    ruf: tuple[str, ...] = ()
    fo: tuple[str, ...] = ("0",)  # failure reporting options: 0, 1, d, s (RFC 7489 section 6.3)
    rf: tuple[str, ...] = ("afrf",)  # failure report formats
    ri: int = 86400  # seconds between aggregate reports
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


@functools.lru_cache(maxsize=1024)
def parse(text: bytes | str, bis: bool = False) -> DmarcRecord:
    """A DmarcRecord from a TXT record that `is_dmarc`; RecordError when it cannot be used.

    `bis`: RFC 9989 rules: a missing p= means p=none, and a bad np= is as bad as a bad sp=.
    Records are values: the last 1,024 parsed are kept (parsing was 1% of an inbound message's
    time, and the same few records come with every message from a domain)."""
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

    rua = _uris(tags, "rua", problems)
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
        ruf=_uris(tags, "ruf", problems),
        fo=_list(tags, "fo", FAILURE_OPTIONS, ("0",), problems),
        rf=_list(tags, "rf", REPORT_FORMATS, ("afrf",), problems),
        ri=_interval(tags, problems),
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


def _uris(tags: dict[str, str], name: str, problems: list[str]) -> tuple[str, ...]:
    """The valid URIs of a comma-separated list; invalid ones are noted and dropped."""
    uris = []
    for uri in (u.strip() for u in tags.get(name, "").split(",")):
        if _URI.match(uri):
            uris.append(uri)
        elif uri:
            problems.append(f"ignored invalid {name} URI {uri!r}")
    return tuple(uris)


def _list(tags: dict[str, str], name: str, allowed: tuple[str, ...], default: tuple[str, ...],
          problems: list[str]) -> tuple[str, ...]:
    """A colon-separated list (fo=, rf=): unknown values are ignored; none left means the default."""
    value = tags.get(name)
    if value is None:
        return default
    known = []
    for item in (i.strip().lower() for i in value.split(":")):
        if item in allowed:
            if item not in known:
                known.append(item)
        else:
            problems.append(f"ignored unknown {name} value {item!r}")
    return tuple(known) or default


def _interval(tags: dict[str, str], problems: list[str]) -> int:
    value = tags.get("ri")
    if value is None:
        return 86400
    if value.isdigit() and 0 < int(value) < 2**32:
        return int(value)
    problems.append(f"ignored invalid ri={value}")
    return 86400
