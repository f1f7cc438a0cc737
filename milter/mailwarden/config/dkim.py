"""[dkim]: verifying inbound signatures and signing outbound mail (issue 4).

    [dkim.verify]
    on_fail = "accept"

    [dkim.keys.rsa1]
    domain = "example.com"
    selector = "2026a"
    key_file = "keys/example.com.2026a.pem"     # relative to this config file

    [[dkim.sign]]
    match = ["example.com", "*.example.com"]
    keys = ["rsa1", "ed1"]                      # RSA + Ed25519 dual signing
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from mailwarden.config.loader import FilePath

Action = Literal["accept", "reject", "tempfail", "quarantine"]

# RFC 6376 section 5.4.1: the header fields that SHOULD be signed.
DEFAULT_SIGN_HEADERS = (
    "From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From", "Resent-To",
    "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
    "List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
    "Message-ID", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
    "MIME-Version", "Sender",
)
DEFAULT_OVERSIGN = (
    "From", "To", "Cc", "Subject", "Date", "Reply-To", "Message-ID", "Content-Type", "MIME-Version",
    "List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe", "List-Post",
    "List-Owner", "List-Archive",
)

_CANON = ("simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed")
_DOMAIN = re.compile(r"^(\*|\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_-]+\.?$", re.I)
_DURATION = re.compile(r"^\d+[smhdw]?$")


def seconds(text: str) -> int:
    """'300', '5m', '2h', '7d', '1w' as seconds."""
    text = text.strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}.get(text[-1:], 0)
    return int(text[:-1]) * unit if unit else int(text)


@dataclass(frozen=True)
class VerifySection:
    enabled: bool = True
    """Verify DKIM signatures on inbound mail."""
    verify_outbound: bool = False
    """Verify signatures on outbound mail too (before signing)."""
    max_signatures: int = 5
    """Verify at most this many DKIM-Signature headers, top down; the rest are ignored."""
    min_rsa_bits: int = 1024
    """RSA keys shorter than this give `policy`, not pass (RFC 8301)."""
    allow_sha1: bool = False
    """Accept rsa-sha1 signatures as pass; RFC 8301 says they are not (result `policy`)."""
    on_body_length_extension: Literal["policy", "pass", "neutral", "fail"] = "policy"
    """Result for a valid l= signature followed by unsigned body content (the body-extension attack)."""
    clock_drift: str = "300"
    """Tolerance for t= in the future and x= in the past: seconds, or with a unit (5m, 1h)."""
    on_fail: Action = "accept"
    """Action when no signature passes and one fails (OpenDKIM On-BadSignature)."""
    on_none: Action = "accept"
    """Action for a message without a DKIM signature (On-NoSignature)."""
    on_temperror: Action = "accept"
    """Action when no signature passes and a key lookup failed temporarily (On-DNSError)."""
    on_permerror: Action = "accept"
    """Action when no signature passes and one is unusable: bad syntax, no or bad key (On-KeyNotFound)."""
    on_policy: Action = "accept"
    """Action when no signature passes and one is refused by policy (rsa-sha1, weak key, l=)."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.max_signatures < 1:
            problems.append(("max_signatures", "must be at least 1"))
        if self.min_rsa_bits < 512:
            problems.append(("min_rsa_bits", "must be at least 512"))
        if not _DURATION.match(self.clock_drift.strip().lower()):
            problems.append(("clock_drift", f"not a duration: {self.clock_drift!r}"))
        return problems

    @property
    def drift_seconds(self) -> int:
        return seconds(self.clock_drift)


@dataclass(frozen=True)
class KeySection:
    domain: str = ""
    """The signing domain (d=)."""
    selector: str = ""
    """The selector (s=): the key is published at <selector>._domainkey.<domain>."""
    key_file: FilePath = ""
    """PEM private key (RSA or Ed25519; the algorithm is read from the key), or a base64 Ed25519
    seed as written by dknewkey. Relative paths are relative to the config file."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.domain or not _DOMAIN.match(self.domain) or self.domain.startswith("*"):
            problems.append(("domain", f"not a domain name: {self.domain!r}"))
        if not self.selector or not re.match(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", self.selector):
            problems.append(("selector", f"not a selector: {self.selector!r}"))
        if not self.key_file:
            problems.append(("key_file", "required"))
        return problems


@dataclass(frozen=True)
class SignRule:
    match: tuple[str, ...] = ()
    """Sender domains: "example.com" exactly, "*.example.com" its subdomains, "*" any domain."""
    identity: Literal["header_from", "envelope"] = "header_from"
    """Which sender is matched: the From header's domain, or the envelope sender's (MAIL FROM)."""
    keys: tuple[str, ...] = ()
    """Names of [dkim.keys.NAME] tables; each adds one signature (RSA + Ed25519 = dual signing)."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.match:
            problems.append(("match", "at least one pattern is required"))
        for i, pat in enumerate(self.match):
            if pat != "*" and not _DOMAIN.match(pat):
                problems.append((f"match[{i}]", f"not a domain pattern: {pat!r}"))
        if not self.keys:
            problems.append(("keys", "at least one key name is required"))
        return problems


@dataclass(frozen=True)
class DkimSection:
    verify: VerifySection = field(default_factory=VerifySection)
    keys: dict[str, KeySection] = field(default_factory=lambda: MappingProxyType({}))  # type: ignore[arg-type,return-value]
    """Signing keys by name."""
    sign: tuple[SignRule, ...] = ()
    """Signing rules, first match wins; no rule matches means the message is not signed."""
    canonicalization: str = "relaxed/relaxed"
    """header/body canonicalization of our signatures."""
    headers: tuple[str, ...] = DEFAULT_SIGN_HEADERS
    """Headers signed when present (every instance)."""
    oversign: tuple[str, ...] = DEFAULT_OVERSIGN
    """Headers signed once more than they occur, so none can be added after signing."""
    expire: str = "0"
    """x= this long after signing (e.g. "7d"); 0 means no x= tag."""
    require_safe_keys: bool = True
    """Refuse key files that group or other users can read, that someone other than us owns, or
    that others could replace through a directory above them (OpenDKIM's RequireSafeKeys)."""
    warn_8bit: bool = True
    """Warn (dry-run, log) when a signed message has 8-bit body bytes or lines over 998 bytes,
    which Postfix's smtp client may change after signing."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.canonicalization not in _CANON:
            problems.append(("canonicalization", f"must be one of {', '.join(_CANON)}"))
        if not _DURATION.match(self.expire.strip().lower()):
            problems.append(("expire", f"not a duration: {self.expire!r}"))
        for i, rule in enumerate(self.sign):
            for name in rule.keys:
                if name not in self.keys:
                    problems.append((f"sign[{i}].keys", f"no [dkim.keys.{name}] table"))
        lowered = {h.lower() for h in self.headers} | {h.lower() for h in self.oversign}
        if "from" not in lowered:
            problems.append(("headers", "From must be signed (RFC 6376 5.4)"))
        for name in ("dkim-signature", "received", "return-path"):
            if name in lowered:
                problems.append(("headers", f"{name} must not be signed"))
        return problems
