"""Organizational domains from the Public Suffix List (RFC 7489 section 3.2).

The list is the copy shipped with the publicsuffixlist package unless `psl_file` names another
(refresh it with `mailwarden psl-refresh FILE`). Loaded once per file, shared by every thread.
"""

from __future__ import annotations

import functools
from pathlib import Path

from publicsuffixlist import PublicSuffixList

from mailwarden.errors import ConfigError


@functools.lru_cache(maxsize=8)
def load(path: str = "", private: bool = True) -> PublicSuffixList:
    """The list in `path` ("" = shipped); `private` False ignores its PRIVATE section."""
    if not path:
        return PublicSuffixList(only_icann=not private)
    try:
        with Path(path).open("rb") as f:
            return PublicSuffixList(f, only_icann=not private)
    except OSError as exc:
        raise ConfigError([f"dmarc.psl_file: {path}: cannot read: {exc.strerror}"]) from None


@functools.lru_cache(maxsize=4096)
def org_domain(domain: str, psl: PublicSuffixList) -> str:
    """The registered domain under the longest public suffix; a public suffix is its own.

    Kept for the last 4,096 domains: each message asks for its From and every DKIM d= and SPF
    domain, mostly the same few, and the list walk was 2% of an inbound message's time."""
    domain = domain.strip().rstrip(".").lower()
    if not domain:
        return domain
    found = psl.privatesuffix(domain)
    return str(found) if found else domain
