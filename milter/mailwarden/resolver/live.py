"""The live resolver: dnspython with a TTL cache and a hard time limit per lookup."""

from __future__ import annotations

import time
from collections.abc import Sequence

import dns.exception
import dns.rdatatype
import dns.resolver

from mailwarden.core.ports import DnsAnswer, Rcode, normalize_name
from mailwarden.errors import DnsTempError


class LiveResolver:
    def __init__(
        self, timeout: float = 5.0, nameservers: Sequence[str] = (), cache_size: int = 10000
    ) -> None:
        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = list(nameservers)
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)
        # LRUCache is thread-safe and honours each answer's TTL (negative answers too).
        self._resolver.cache = dns.resolver.LRUCache(cache_size)
        # Positive answers as we return them, until they expire: a hit in dnspython's cache
        # still costs a name parse and a resolution object (a tenth of an inbound message's time).
        self._answers: dict[tuple[str, str], tuple[float, DnsAnswer]] = {}
        self._cache_size = cache_size

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        key = normalize_name(name)
        rdtype = rdtype.upper()
        kept = self._answers.get((key, rdtype))
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        try:
            answer = self._resolver.resolve(key + ".", rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return DnsAnswer(key, rdtype, Rcode.NXDOMAIN)
        except dns.exception.Timeout:
            raise DnsTempError(key, rdtype, "timed out") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsTempError(key, rdtype, f"SERVFAIL ({exc})") from None
        except dns.exception.DNSException as exc:
            raise DnsTempError(key, rdtype, str(exc) or type(exc).__name__) from None
        records: list[str | bytes] = []
        if answer.rrset is not None:
            for rdata in answer.rrset:
                if answer.rrset.rdtype == dns.rdatatype.TXT:
                    records.append(b"".join(rdata.strings))
                else:
                    records.append(rdata.to_text())
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        result = DnsAnswer(key, rdtype, Rcode.NOERROR, tuple(records), ttl)
        left = answer.expiration - time.time()  # what dnspython's cache had left of the TTL
        if left > 0:
            if len(self._answers) >= self._cache_size:
                self._answers.clear()
            self._answers[(key, rdtype)] = (time.monotonic() + left, result)
        return result

    def txt(self, name: str) -> list[bytes]:
        return [r for r in self.query(name, "TXT").records if isinstance(r, bytes)]
