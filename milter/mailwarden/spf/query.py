"""pyspf, with every DNS lookup going through our Resolver port.

pyspf calls a module-level DNS function from `query.dns()`; we override that method on a
subclass instead of patching the module, so concurrent checks in libmilter threads each use their
own resolver. Our resolver's DnsTempError becomes pyspf's TempError, hence spf=temperror.

`KeptSpf` keeps results while the DNS answers they were computed from stay the same: pyspf's
result is a function of the client address, the sender, the HELO name and the answers its
lookups got (each check starts with an empty cache of its own), so a result whose lookups all
get the same answers again is the result a new check would give. Asking the resolver again is a
dictionary lookup while the answers are cached (their TTL); pyspf costs 20-30 us per check.
"""

from __future__ import annotations

import time
from typing import Any

import spf

from mailwarden.core.auth import SpfResult, SpfScope, SpfStatus
from mailwarden.core.ports import Resolver
from mailwarden.errors import DnsTempError

RESULTS = frozenset(s.value for s in SpfStatus)


class ResolverQuery(spf.query):  # type: ignore[misc]
    """An SPF check whose DNS lookups go to `resolver`, all of them within `lookup_time` seconds."""

    def __init__(self, resolver: Resolver, lookup_time: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolver = resolver
        self._deadline = time.monotonic() + lookup_time
        # Every question sent to the resolver and what came back (None: not an IDNA name).
        self.consulted: list[tuple[str, str, tuple[str | bytes, ...] | None]] = []

    def dns(self, name: Any, qtype: str, cnames: Any = None, ignore_void: bool = False) -> list[Any]:
        name = str(name).rstrip(".").lower()
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []  # not a valid DNS name: no data, as pyspf does
        key = (name, qtype)
        if key in self.cache:
            return list(self.cache[key])
        if qtype == "SPF":
            return []  # RR type 99 is obsolete (RFC 7208 section 3.1)
        if time.monotonic() > self._deadline:
            raise spf.TempError("DNS: SPF lookups took too long")
        try:
            answer = self._resolver.query(name, qtype)
        except DnsTempError as exc:
            raise spf.TempError(str(exc)) from None
        except UnicodeError:
            self.consulted.append((name, qtype, None))
            return []  # not representable as an IDNA name: it cannot exist
        self.consulted.append((name, qtype, answer.records))
        records = [_convert(qtype, r) for r in answer.records]
        self.cache[key] = records
        if not records and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return list(records)


def _convert(qtype: str, record: str | bytes) -> Any:
    # The shapes pyspf's own dnspython lookup produces.
    if qtype in ("TXT", "SPF"):
        return [record if isinstance(record, bytes) else record.encode()]
    text = record.decode() if isinstance(record, bytes) else record
    if qtype == "MX":
        pref, _, exchange = text.partition(" ")
        return (int(pref), exchange.strip().rstrip("."))
    if qtype == "PTR":
        return text.rstrip(".")
    return text


def check_spf(
    resolver: Resolver,
    ip: str,
    sender: str,
    helo: str,
    identity: SpfScope = SpfScope.MAILFROM,
    lookup_time: float = 20.0,
) -> SpfResult:
    """The SPF result for `sender` (identity mailfrom) or for `helo` (identity helo)."""
    return _check(resolver, ip, sender, helo, identity, lookup_time)[0]


Consulted = tuple[tuple[str, str, tuple[str | bytes, ...] | None], ...]


def _check(resolver: Resolver, ip: str, sender: str, helo: str, identity: SpfScope,
           lookup_time: float) -> tuple[SpfResult, Consulted | None]:
    """The result, and the lookups it came from; None for those of a result that must not be kept
    (a temporary error, or a record with the %{t} macro: the time of the check)."""
    if identity is SpfScope.HELO:
        domain = helo.strip().rstrip(".").lower()
        sender = f"postmaster@{domain}"
        if not domain or _is_address_literal(helo):
            return SpfResult(SpfStatus.NONE, domain, SpfScope.HELO, "HELO is not a domain name"), ()
    else:
        domain = sender.rpartition("@")[2].strip().rstrip(".").lower() if "@" in sender else helo
    if not ip.strip():  # pyspf would fail later with an AttributeError
        return SpfResult(SpfStatus.PERMERROR, domain, identity, "SPF Permanent Error: no client address"), ()
    q = None
    try:
        q = ResolverQuery(resolver, lookup_time, i=ip, s=sender, h=helo or "unknown", querytime=0)
        result, _code, explanation = q.check()
    except spf.TempError as exc:
        result, explanation = "temperror", f"SPF Temporary Error: {exc}"
    except (spf.PermError, ValueError) as exc:
        # pyspf raises for an unusable client address or identity: nothing it can check.
        result, explanation = "permerror", f"SPF Permanent Error: {exc}"
    result = str(result).lower()
    status = SpfStatus(result) if result in RESULTS else SpfStatus.PERMERROR
    consulted = tuple(q.consulted) if q is not None else ()
    timed = any(isinstance(r, bytes) and b"%{t" in r.lower() for _, _, rs in consulted for r in rs or ())
    keep = status is not SpfStatus.TEMPERROR and not timed
    return SpfResult(status, domain, identity, str(explanation)), consulted if keep else None


class KeptSpf:
    """check_spf() with results kept, per client address, sender, HELO and identity, for as
    long as every lookup they came from gets the same answer (see the module docstring).

    At most `size` results; when full, all are dropped (a burst of new senders starts over)."""

    def __init__(self, resolver: Resolver, lookup_time: float = 20.0, size: int = 4096) -> None:
        self.resolver = resolver
        self.lookup_time = lookup_time
        self.size = size
        self._kept: dict[tuple[str, str, str, SpfScope], tuple[SpfResult, Consulted]] = {}

    def check(self, ip: str, sender: str, helo: str, identity: SpfScope = SpfScope.MAILFROM) -> SpfResult:
        key = (ip, sender, helo, identity)
        kept = self._kept.get(key)
        if kept is not None and self._same_answers(kept[1]):
            return kept[0]
        result, consulted = _check(self.resolver, ip, sender, helo, identity, self.lookup_time)
        if consulted is not None:
            if len(self._kept) >= self.size:
                self._kept.clear()
            self._kept[key] = (result, consulted)
        return result

    def _same_answers(self, consulted: Consulted) -> bool:
        for name, qtype, records in consulted:
            try:
                answer = self.resolver.query(name, qtype)
            except UnicodeError:
                if records is not None:
                    return False
                continue
            except DnsTempError:
                return False  # checked again: a temporary error is not to be hidden by a kept result
            if records is None or answer.records != records:
                return False
        return True


def _is_address_literal(helo: str) -> bool:
    h = helo.strip()
    return h.startswith("[") or h.replace(".", "").isdigit() or ":" in h
