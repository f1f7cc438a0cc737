"""[arc]: ARC (RFC 8617) chain verification, the trusted-forwarder DMARC override, and sealing.

    [arc]
    trusted_sealers = ["lists.example.org"]     # believe these forwarders' chains

    [[arc.seal]]                                # seal as a forwarder or list host
    key = "rsa1"                                # a [dkim.keys.NAME] table
    direction = "outbound"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_DOMAIN = re.compile(r"^([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_-]+\.?$", re.I)


@dataclass(frozen=True)
class SealRule:
    key: str = ""
    """Name of a [dkim.keys.NAME] table: its domain (d=), selector (s=) and key seal the set."""
    direction: Literal["inbound", "outbound", "all"] = "outbound"
    """Which mail to seal: inbound (we forward what we receive), outbound (a list host re-sending
    through the submission or local path), or all."""
    recipient_domains: tuple[str, ...] = ()
    """Seal only mail with a recipient in one of these domains (and their subdomains); empty: any."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.key:
            problems.append(("key", "required: the name of a [dkim.keys.NAME] table"))
        for i, dom in enumerate(self.recipient_domains):
            if not _DOMAIN.match(dom):
                problems.append((f"recipient_domains[{i}]", f"not a domain name: {dom!r}"))
        return problems


@dataclass(frozen=True)
class ArcSection:
    enabled: bool = True
    """Verify ARC chains on inbound mail; the A-R header shows arc=, dry-run the whole chain.
    Mail that a [[arc.seal]] rule seals is verified whatever this says (its cv= needs it)."""
    max_instances: int = 50
    """A chain with more ARC sets fails at once, without any DNS lookup or crypto (RFC 8617: 50)."""
    trusted_sealers: tuple[str, ...] = ()
    """Sealing domains (ARC-Seal d=) whose chains may rescue a DMARC failure: when DMARC fails, the
    chain passes, the newest seal is by one of these, and the earliest ARC-Authentication-Results
    shows DKIM or SPF passing aligned with the From domain (or dmarc=pass), the disposition
    becomes none (A-R: policy.override=arc). Empty (the default): ARC is reported, never acted on."""
    seal: tuple[SealRule, ...] = ()
    """Sealing rules, first match wins; none: we never seal. Sealing runs last, after our A-R header
    and DKIM signing, and adds ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not 1 <= self.max_instances <= 50:
            problems.append(("max_instances", "must be 1 to 50 (RFC 8617 allows at most 50 sets)"))
        for i, dom in enumerate(self.trusted_sealers):
            if not _DOMAIN.match(dom):
                problems.append((f"trusted_sealers[{i}]", f"not a domain name: {dom!r}"))
        return problems
