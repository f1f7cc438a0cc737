"""The ARC headers of a message, grouped into sets by instance, and their tags (RFC 8617 4).

Parsing only: what is malformed is said in `problem`, and RFC 8617 5.2 makes any such chain fail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailwarden.core.model import Header
from mailwarden.dkim.tags import TagError, b64, parse_tags

AAR = "arc-authentication-results"
AMS = "arc-message-signature"
SEAL = "arc-seal"
ARC_NAMES = (AAR, AMS, SEAL)
ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
_AAR_INSTANCE = re.compile(r"^\s*i\s*=\s*([0-9]{1,6})\s*(;|$)")
_DOMAIN = re.compile(r"^([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_-]+$")


def lname(header: Header) -> str:
    return header.name.lower().rstrip(" \t")


def enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class ArcSignature:
    """An ARC-Message-Signature or ARC-Seal, parsed (the seal has no h=, bh=, c=)."""

    instance: int
    domain: str
    selector: str
    algorithm: str
    signature: bytes
    b_text: str
    cv: str = ""  # seal only
    headers: tuple[str, ...] = ()  # AMS h=, lower case
    body_hash: bytes = b""
    header_canon: str = "relaxed"
    body_canon: str = "relaxed"


@dataclass(slots=True)
class ArcSet:
    instance: int
    aar: list[Header] = field(default_factory=list)
    ams: list[Header] = field(default_factory=list)
    seal: list[Header] = field(default_factory=list)

    def complete(self) -> bool:
        return len(self.aar) == len(self.ams) == len(self.seal) == 1


@dataclass(frozen=True, slots=True)
class Chain:
    sets: dict[int, ArcSet]
    problem: str = ""  # a header whose instance cannot be read

    @property
    def count(self) -> int:
        return max(self.sets, default=0)


def instance_of(header: Header) -> int | None:
    """The i= of an ARC header, None when it has none or it is not a number."""
    value = header.unfolded()
    if lname(header) == AAR:
        m = _AAR_INSTANCE.match(value)
        return int(m.group(1)) if m else None
    try:
        raw = parse_tags(enc(value)).get("i", b"")
    except TagError:
        return None
    return int(raw) if raw.isdigit() and len(raw) <= 6 else None


def collect(headers: Sequence[Header]) -> Chain:
    sets: dict[int, ArcSet] = {}
    problem = ""
    for h in headers:
        name = lname(h)
        if name not in ARC_NAMES:
            continue
        i = instance_of(h)
        if i is None:
            problem = problem or f"{h.name} without a usable i= tag"
            continue
        s = sets.setdefault(i, ArcSet(i))
        {AAR: s.aar, AMS: s.ams, SEAL: s.seal}[name].append(h)
    return Chain(sets, problem)


def parse_arc_signature(header: Header) -> ArcSignature:
    """An AMS or AS; TagError says why it cannot be used."""
    is_seal = lname(header) == SEAL
    tags = parse_tags(enc(header.value))
    required = ("i", "a", "b", "cv", "d", "s") if is_seal else ("i", "a", "b", "bh", "d", "h", "s")
    for req in required:
        if req not in tags:
            raise TagError(f"missing {req}= tag")
    if is_seal and "h" in tags:
        raise TagError("h= is not allowed in an ARC-Seal")
    algorithm = tags["a"].decode("ascii", "replace").lower()
    if algorithm not in ALGORITHMS:
        raise TagError(f"unsupported algorithm a={algorithm}")
    domain = tags["d"].decode("ascii", "replace").lower().rstrip(".")
    selector = tags["s"].decode("ascii", "replace").lower()
    if not _DOMAIN.match(domain) or not all(_DOMAIN.match(p) for p in selector.split(".")):
        raise TagError("d= or s= is not a domain name")
    b_text = b"".join(tags["b"].split()).decode("ascii", "replace")
    instance = int(tags["i"]) if tags["i"].isdigit() and len(tags["i"]) <= 6 else 0
    if is_seal:
        cv = tags["cv"].decode("ascii", "replace").lower()
        return ArcSignature(instance, domain, selector, algorithm, b64(tags["b"], "b"), b_text, cv)
    canon = tags.get("c", b"relaxed/relaxed").decode("ascii", "replace").lower()
    hc, _, bc = canon.partition("/")
    bc = bc or "simple"
    if hc not in ("simple", "relaxed") or bc not in ("simple", "relaxed"):
        raise TagError(f"unsupported canonicalization c={canon}")
    names = tuple(n.strip(b" \t\r\n").decode("ascii", "replace").lower() for n in tags["h"].split(b":"))
    if SEAL in names:
        raise TagError("h= includes ARC-Seal")
    return ArcSignature(instance, domain, selector, algorithm, b64(tags["b"], "b"), b_text,
                        headers=names, body_hash=b64(tags["bh"], "bh"), header_canon=hc, body_canon=bc)
