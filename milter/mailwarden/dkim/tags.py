"""Tag=value lists (RFC 6376 3.2): the DKIM-Signature header and the key record."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass

_TAG_NAME = re.compile(rb"^[A-Za-z][A-Za-z0-9_]*$")
_B_FIRST = re.compile(rb"[ \t\r\n]*b[ \t\r\n]*=")
_B_AFTER_SEMI = re.compile(rb";[ \t\r\n]*b[ \t\r\n]*=")
_H_SEP = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_DOMAIN = re.compile(r"^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*[A-Za-z0-9_-]+$")


class TagError(ValueError):
    """A tag list that cannot be used; the message is the reason shown in results."""


_WSP = b" \t\r\n"
# Tag names as written (whitespace around them included) -> the name: most lists use a few
# spellings, so the check and decode of each name happen once per process, not per tag.
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 4096


def parse_tags(value: bytes, lenient: bool = False) -> dict[str, bytes]:
    """Tags by name, values with surrounding whitespace removed. Duplicates are an error
    (lenient: the first wins, and malformed parts are skipped)."""
    tags: dict[str, bytes] = {}
    for part in value.split(b";"):
        raw_name, eq, val = part.partition(b"=")
        key = _NAMES.get(raw_name) if eq else None
        if key is None:
            name = raw_name.strip(_WSP)
            if not eq and not name:
                continue  # an empty part: "a=1;;b=2", or a trailing ";"
            if not eq or not _TAG_NAME.match(name):
                if lenient:
                    continue
                raise TagError(f"malformed tag {part.strip()[:30]!r}")
            key = name.decode("ascii")
            if len(_NAMES) < _NAMES_MAX:
                _NAMES[raw_name] = key
        if key in tags:
            if lenient:
                continue
            raise TagError(f"duplicate tag {key}=")
        tags[key] = val.strip(_WSP)
    return tags


def strip_b_value(value: bytes) -> bytes:
    """The header value with b='s value (and its whitespace) removed, for hashing."""
    # The first b= tag, at the start or after a ";": searched as ";..." (a literal first
    # character lets the regex engine skip ahead) after trying the start.
    m = _B_FIRST.match(value) or _B_AFTER_SEMI.search(value)
    if m is None:
        return value
    end = value.find(b";", m.end())
    return value[:m.end()] + (value[end:] if end >= 0 else b"")


def b64(value: bytes, tag: str) -> bytes:
    return _b64_joined(b"".join(value.split()), tag)


def _b64_joined(value: bytes, tag: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TagError(f"{tag}= is not base64") from None


# A signer writes the same few d=, s= and h= values on all its mail: each is checked once.
@functools.lru_cache(maxsize=1024)
def _domain_and_selector(d: bytes, s: bytes) -> tuple[str, str]:
    try:
        domain = d.decode("ascii").lower().rstrip(".")
        selector = s.decode("ascii").lower()
    except UnicodeDecodeError:
        raise TagError("d= or s= is not ASCII") from None
    if not _DOMAIN.match(domain):
        raise TagError(f"d={domain} is not a domain name")
    if not selector or not all(_DOMAIN.match(p) for p in selector.split(".")):
        raise TagError(f"s={selector} is not a selector")
    return domain, selector


@functools.lru_cache(maxsize=1024)
def _header_names(h: bytes) -> tuple[str, ...]:
    """h= as lower-case names, each stripped of the whitespace around it."""
    joined = _H_SEP.sub(b":", h.strip(_WSP))
    if joined.isascii():  # one decode for the list instead of one per name
        return tuple(joined.decode("ascii").lower().split(":"))
    return tuple(n.decode("ascii", "replace").lower() for n in joined.split(b":"))


@dataclass(frozen=True, slots=True)
class Signature:
    """A parsed DKIM-Signature."""

    domain: str
    selector: str
    algorithm: str  # rsa-sha256, rsa-sha1, ed25519-sha256
    header_canon: str
    body_canon: str
    headers: tuple[str, ...]  # h=, lower case
    body_hash: bytes
    signature: bytes
    b_text: str  # b= as written (whitespace removed), for header.b
    identity: str
    length: int | None
    timestamp: int | None
    expires: int | None

    @property
    def key_type(self) -> str:
        return self.algorithm.split("-")[0]

    @property
    def hash_name(self) -> str:
        return self.algorithm.split("-")[1]


ALGORITHMS = ("rsa-sha256", "rsa-sha1", "ed25519-sha256")


def _int(tags: dict[str, bytes], name: str) -> int | None:
    if name not in tags:
        return None
    raw = tags[name]
    if not raw.isdigit() or len(raw) > 12:
        raise TagError(f"{name}= is not a number")
    return int(raw)


def parse_signature(value: bytes) -> tuple[dict[str, bytes], Signature]:
    """Parse and check a DKIM-Signature value; TagError says why it is unusable."""
    tags = parse_tags(value)
    for req in ("v", "a", "b", "bh", "d", "h", "s"):
        if req not in tags:
            raise TagError(f"missing {req}= tag")
    if tags["v"] != b"1":
        raise TagError(f"unsupported version v={tags['v'].decode('ascii', 'replace')}")
    algorithm = tags["a"].decode("ascii", "replace").lower()
    if algorithm not in ALGORITHMS:
        raise TagError(f"unsupported algorithm a={algorithm}")
    canon = tags.get("c", b"simple").decode("ascii", "replace").lower()
    hc, _, bc = canon.partition("/")
    bc = bc or "simple"
    if hc not in ("simple", "relaxed") or bc not in ("simple", "relaxed"):
        raise TagError(f"unsupported canonicalization c={canon}")
    q = tags.get("q", b"dns/txt").lower()
    if q != b"dns/txt" and b"dns/txt" not in [x.strip() for x in q.split(b":")]:
        raise TagError(f"unsupported query method q={q.decode('ascii', 'replace')}")
    domain, selector = _domain_and_selector(tags["d"], tags["s"])
    headers = _header_names(tags["h"])
    if "from" not in headers:
        raise TagError("h= does not include From")
    identity = tags.get("i", b"").decode("utf-8", "replace")
    if identity:
        idom = identity.rpartition("@")[2].lower().rstrip(".")
        if "@" not in identity or (idom != domain and not idom.endswith("." + domain)):
            raise TagError(f"i={identity} is not in d={domain}")
    length = _int(tags, "l")
    timestamp = _int(tags, "t")
    expires = _int(tags, "x")
    if timestamp is not None and expires is not None and expires < timestamp:
        raise TagError("x= is before t=")
    b_joined = b"".join(tags["b"].split())
    sig = Signature(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        header_canon=hc,
        body_canon=bc,
        headers=headers,
        body_hash=b64(tags["bh"], "bh"),
        signature=_b64_joined(b_joined, "b"),
        b_text=b_joined.decode("ascii", "replace"),
        identity=identity,
        length=length,
        timestamp=timestamp,
        expires=expires,
    )
    return tags, sig
