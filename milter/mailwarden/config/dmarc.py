"""[spf], [dmarc] and [authres]: sender authentication and the Authentication-Results header."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from mailwarden.config.loader import FilePath


@dataclass(frozen=True)
class SpfSection:
    enabled: bool = True
    """Check SPF (RFC 7208) for inbound mail: MAIL FROM at envfrom, HELO when configured."""
    check_helo: bool = True
    """Also check the HELO identity; its result stands in for MAIL FROM when the sender is null."""
    reject_on_fail: bool = False
    """Reject spf=fail with 550 5.7.23 at MAIL FROM. Off by default, so that DMARC decides."""
    reject_helo_fail: bool = False
    """Reject when the HELO identity fails (RFC 7208 section 2.3), with 550 5.7.23."""
    trusted_authserv_ids: tuple[str, ...] = ()
    """authserv-ids of upstream hosts whose Authentication-Results spf= (or Received-SPF with
    receiver=) is believed instead of our own check. Empty: no incoming result is trusted."""
    lookup_time: float = 20.0
    """Seconds all DNS lookups of one check may take together (RFC 7208 section 4.6.4)."""

    def check(self) -> list[tuple[str, str]]:
        return [("lookup_time", "must be positive")] if self.lookup_time <= 0 else []


@dataclass(frozen=True)
class DmarcSection:
    enabled: bool = True
    """Evaluate DMARC for inbound mail."""
    mode: Literal["enforce", "report"] = "enforce"
    """enforce: apply the domain's policy (reject/quarantine); report: only the A-R header."""
    quarantine: Literal["hold", "header"] = "hold"
    """p=quarantine in enforce mode: hold (Postfix hold queue) or only add `quarantine_header`."""
    quarantine_header: str = "X-Mailwarden-Quarantine"
    """Header added instead of holding when quarantine = "header"."""
    reject_text: str = "rejected by DMARC policy for {domain}"
    """Text of the 550 5.7.1 reply; {domain} is the From domain."""
    temperror: Literal["tempfail", "accept"] = "tempfail"
    """A DNS timeout or SERVFAIL while finding the policy, or, when nothing passes aligned, on
    the key of an aligned DKIM signature or the SPF record of an aligned domain (includes too):
    dmarc=temperror, then tempfail (451 4.7.5, the sender retries) or accept. Never a reject:
    a DNS outage at the sender's provider must not bounce its mail. With p=none, always accept."""
    multi_from: Literal["reject", "quarantine", "accept"] = "reject"
    """A message without exactly one From address (no From header, several, or several addresses
    in one; dmarc=permerror): reject (550 5.7.1), quarantine, or accept. A single From without a
    usable domain is dmarc=none instead, with no policy to apply."""
    discovery: Literal["psl", "tree-walk"] = "psl"
    """Organizational domain: psl (RFC 7489 + Public Suffix List) or tree-walk (RFC 9989 DNS walk,
    with np=, psd= and t=; pct= is ignored)."""
    psl_file: FilePath = ""
    """A public_suffix_list.dat to use instead of the copy shipped with publicsuffixlist.
    Relative paths are relative to the config file."""
    psl_private: bool = True
    """Count the list's PRIVATE section (github.io, blogspot.com, ...) as public suffixes."""
    exempt_networks: tuple[str, ...] = ()
    """Client networks whose mail is never rejected or held for DMARC (results are still shown)."""
    exempt_sender_domains: tuple[str, ...] = ()
    """From domains (and their subdomains) never rejected or held."""
    exempt_recipients: tuple[str, ...] = ()
    """Recipient addresses, or @domain, for which no message is rejected or held."""

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for i, net in enumerate(self.exempt_networks):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                problems.append((f"exempt_networks[{i}]", str(exc)))
        if self.reject_text.count("{domain}") > 1 or "{" in self.reject_text.replace("{domain}", ""):
            problems.append(("reject_text", "may only contain the placeholder {domain}"))
        if not self.quarantine_header or ":" in self.quarantine_header or " " in self.quarantine_header:
            problems.append(("quarantine_header", "must be a header field name"))
        return problems


@dataclass(frozen=True)
class AuthresSection:
    enabled: bool = True
    """Add one Authentication-Results header (RFC 8601) to inbound mail, at the top."""
    outbound: bool = False
    """Also add it to outbound mail (it then carries only what was checked, usually nothing)."""
    remove_ids: tuple[str, ...] = ()
    """Further authserv-ids whose incoming A-R headers are removed (ours always are)."""
