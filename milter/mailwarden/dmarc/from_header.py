"""The RFC5322.From domain DMARC evaluates: exactly one From header with exactly one address.

Two kinds of trouble (RFC 7489 section 6.6.1): no From header, or several From headers or
addresses, is `dmarc=permerror`, and `[dmarc] multi_from` decides what happens to the message.
One From address from which no domain can be extracted (`undisclosed-recipients:;`, `<>`, a bare
local part, a name that is no domain) is `dmarc=none`, as RFC 7489 section 11.2 names it: no
aligned identifier could be extracted, so there is no policy to apply.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from email.utils import getaddresses

from mailwarden.core.model import Header
from mailwarden.core.ports import normalize_name


@dataclass(frozen=True, slots=True)
class AuthorDomain:
    domain: str = ""
    problem: str = ""  # why there is no usable author domain
    not_one: bool = False  # the problem is no From, or several: permerror and multi_from


def author_domain(headers: list[Header]) -> AuthorDomain:
    froms = [h for h in headers if h.name.lower() == "from"]
    if not froms:
        return AuthorDomain(problem="no From header", not_one=True)
    if len(froms) > 1:
        return AuthorDomain(problem=f"{len(froms)} From headers", not_one=True)
    return _from_value(froms[0].unfolded())


@functools.lru_cache(maxsize=1024)
def _from_value(unfolded: str) -> AuthorDomain:
    """The author domain of one From header value. Kept for the last 1,024 values: the address
    parser was 1.5% of an inbound message's time, and From values repeat (lists, newsletters)."""
    value = unfolded.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    addrs = [a for _, a in getaddresses([value]) if a]
    if len(addrs) > 1:
        return AuthorDomain(problem=f"{len(addrs)} addresses in From", not_one=True)
    if not addrs:
        return AuthorDomain(problem="no address in From")
    local, at, domain = addrs[0].rpartition("@")
    domain = domain.strip().rstrip(".")
    if not at or not local or not _valid_domain(domain):
        return AuthorDomain(problem="no domain in From address")
    try:
        return AuthorDomain(normalize_name(domain))
    except UnicodeError:
        return AuthorDomain(problem="From domain is not a valid domain name")


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) >= 2 and all(0 < len(lb) < 64 and not lb.startswith("-") for lb in labels) and all(
        ch.isalnum() or ch in "-_" for lb in labels for ch in lb
    )
