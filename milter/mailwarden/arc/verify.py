"""ARC chain validation (RFC 8617 5.2) with the DKIM verifier's canonicalization, keys and crypto.

The order is the RFC's, cheapest first: count and structure (no crypto, no DNS), the newest
ARC-Message-Signature, then every ARC-Seal newest first, then, for header.oldest-pass, the older
AMSes. A DNS timeout or SERVFAIL on a key that decides the result gives temperror, never fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from mailwarden.arc.chain import AAR, AMS, SEAL, ArcSignature, Chain, collect, enc, lname, parse_arc_signature
from mailwarden.arc.result import ArcInstance, ArcResult
from mailwarden.core.model import Header
from mailwarden.core.ports import Resolver
from mailwarden.dkim.canon import BodyHash, body_hashes, canon_header
from mailwarden.dkim.keys import KeyRecordError, PublicKey
from mailwarden.dkim.tags import Signature, TagError, strip_b_value
from mailwarden.dkim.verify import _first_key, header_data
from mailwarden.errors import DnsTempError

MAX_INSTANCES = 50  # RFC 8617 4.2.1


@dataclass(frozen=True)
class ArcPolicy:
    max_instances: int = MAX_INSTANCES
    min_rsa_bits: int = 1024  # RFC 8301, as [dkim.verify] min_rsa_bits


class _Temp(Exception):
    """A key lookup failed temporarily."""


class _Keys:
    """Keys for one chain, each looked up once (the resolver caches across messages by TTL,
    and parse_key_record by record content)."""

    def __init__(self, resolver: Resolver, policy: ArcPolicy) -> None:
        self.resolver = resolver
        self.policy = policy
        self._seen: dict[tuple[str, str], PublicKey | str] = {}

    def get(self, sig: ArcSignature) -> PublicKey | str:
        """The key for `sig`, or why there is none; raises _Temp on a temporary DNS failure."""
        where = (sig.selector, sig.domain)
        if where not in self._seen:
            self._seen[where] = self._lookup(*where)
        found = self._seen[where]
        if isinstance(found, str):
            if found == "temperror":
                raise _Temp(f"key lookup for {sig.selector}._domainkey.{sig.domain} failed")
            return found
        key_type = sig.algorithm.split("-")[0]
        if found.key_type != key_type:
            return f"key type {found.key_type} does not match a={sig.algorithm}"
        if found.hashes and "sha256" not in found.hashes:
            return "key h= does not allow sha256"
        if found.key_type == "rsa" and found.bits < self.policy.min_rsa_bits:
            return f"{found.bits}-bit RSA key is below {self.policy.min_rsa_bits} bits (RFC 8301)"
        return found

    def _lookup(self, selector: str, domain: str) -> PublicKey | str:
        name = f"{selector}._domainkey.{domain}"
        try:
            records = self.resolver.txt(name)
        except DnsTempError:
            return "temperror"
        if not records:
            return f"no key record at {name}"
        try:
            return _first_key(records)
        except KeyRecordError as exc:
            return str(exc)


def seal_headers(chain: Chain, upto: int) -> list[Header]:
    """The headers the ARC-Seal of instance `upto` signs, in order: every set 1..upto as AAR,
    AMS, AS (RFC 8617 5.1.1), the seal itself last."""
    return [h for i in range(1, upto + 1) for h in (chain.sets[i].aar[0], chain.sets[i].ams[0],
                                                     chain.sets[i].seal[0])]


def seal_data(headers: Sequence[Header]) -> bytes:
    """The signed bytes: `headers` relaxed, the last (the seal) with b= emptied and no CRLF."""
    parts = [canon_header("relaxed", enc(h.name), enc(h.value)) for h in headers[:-1]]
    last = headers[-1]
    parts.append(canon_header("relaxed", enc(last.name), strip_b_value(enc(last.value)))[:-2])
    return b"".join(parts)


def _as_dkim(sig: ArcSignature) -> Signature:
    """The AMS in the DKIM verifier's shape, so its header selection is reused as is.

    From counts once more than h= lists it, so a second From added above the signed one breaks
    the signature; a message with one From is unaffected (a listed name without an instance
    left adds nothing). dkimpy does the same (its bug 644046)."""
    names = (*sig.headers, "from") if "from" in sig.headers else sig.headers
    return Signature(sig.domain, sig.selector, sig.algorithm, sig.header_canon, sig.body_canon, names,
                     sig.body_hash, sig.signature, sig.b_text, "", None, None, None)


class ArcVerifier:
    def __init__(self, resolver: Resolver, policy: ArcPolicy | None = None) -> None:
        self.resolver = resolver
        self.policy = policy or ArcPolicy()

    def verify(self, headers: Sequence[Header], body: Callable[[], Iterable[bytes]]) -> ArcResult:
        """The chain of `headers` (as received); `body` gives the body chunks (called at most once)."""
        if not any(lname(h) in (AAR, AMS, SEAL) for h in headers):
            return ArcResult("none")
        chain = collect(headers)
        if len(chain.sets) > self.policy.max_instances or chain.count > self.policy.max_instances:
            return ArcResult("fail", reason=f"more than {self.policy.max_instances} ARC sets")
        seals, why = self._structure(chain)
        instances = {i: ArcInstance(i, s.domain, s.selector, s.cv) for i, s in seals.items()}
        if why:
            return self._done("fail", instances, why, chain)
        n = chain.count
        keys = _Keys(self.resolver, self.policy)
        try:
            # Every AMS must at least parse (dkimpy fails the chain too); only the newest must verify.
            ams = {i: parse_arc_signature(chain.sets[i].ams[0]) for i in range(1, n + 1)}
        except TagError as exc:
            return self._done("fail", instances, f"ARC-Message-Signature: {exc}", chain)
        wanted = {(a.body_canon, "sha256", None) for a in ams.values()}
        hashes = body_hashes(body(), wanted, fix_lf=False)
        try:
            # The newest AMS must verify; older ones only tell how far back the message is intact.
            ok, reason = self._check_ams(ams[n], chain.sets[n].ams[0], headers, hashes, keys)
            instances[n] = replace(instances[n], ams="pass" if ok else "fail", ams_domain=ams[n].domain,
                                   reason=reason)
            if not ok:
                return self._done("fail", instances, f"ARC-Message-Signature i={n}: {reason}", chain)
            for i in range(n, 0, -1):
                ok, reason = self._check_seal(seals[i], chain, keys)
                instances[i] = replace(instances[i], seal="pass" if ok else "fail",
                                       reason=instances[i].reason or reason)
                if not ok:
                    return self._done("fail", instances, f"ARC-Seal i={i}: {reason}", chain)
        except _Temp as exc:
            return self._done("temperror", instances, str(exc), chain)
        oldest = self._oldest_pass(n, ams, chain, headers, hashes, keys, instances)
        return self._done("pass", instances, "", chain, oldest)

    def _structure(self, chain: Chain) -> tuple[dict[int, ArcSignature], str]:
        """The parsed seals, and why the chain's form fails RFC 8617 5.2 steps 2-3 ("" if not)."""
        if chain.problem:
            return {}, chain.problem
        n = chain.count
        for i in range(1, n + 1):
            s = chain.sets.get(i)
            if s is None:
                return {}, f"ARC set i={i} is missing"
            if not s.complete():
                return {}, f"ARC set i={i} does not have exactly one of each ARC header"
        seals: dict[int, ArcSignature] = {}
        for i in range(1, n + 1):
            try:
                seals[i] = parse_arc_signature(chain.sets[i].seal[0])
            except TagError as exc:
                return seals, f"ARC-Seal i={i}: {exc}"
        if seals[n].cv == "fail":
            return seals, f"ARC-Seal i={n} says cv=fail"
        for i, seal in seals.items():
            expected = "none" if i == 1 else "pass"
            if seal.cv != expected:
                return seals, f"ARC-Seal i={i} has cv={seal.cv}, not {expected}"
        return seals, ""

    @staticmethod
    def _check_ams(sig: ArcSignature, header: Header, headers: Sequence[Header],
                   hashes: dict[tuple[str, str, int | None], BodyHash], keys: _Keys) -> tuple[bool, str]:
        key = keys.get(sig)
        if isinstance(key, str):
            return False, key
        if hashes[(sig.body_canon, "sha256", None)].digest() != sig.body_hash:
            return False, "body hash did not verify"
        # h= picked bottom up as for DKIM: the instances this hop saw, below what later hops added.
        if not key.verify(sig.algorithm, sig.signature, header_data(_as_dkim(sig), headers, header)):
            return False, "signature did not verify"
        return True, ""

    @staticmethod
    def _check_seal(seal: ArcSignature, chain: Chain, keys: _Keys) -> tuple[bool, str]:
        key = keys.get(seal)
        if isinstance(key, str):
            return False, key
        if not key.verify(seal.algorithm, seal.signature, seal_data(seal_headers(chain, seal.instance))):
            return False, "signature did not verify"
        return True, ""

    def _oldest_pass(self, n: int, ams: dict[int, ArcSignature], chain: Chain, headers: Sequence[Header],
                     hashes: dict[tuple[str, str, int | None], BodyHash], keys: _Keys,
                     instances: dict[int, ArcInstance]) -> int:
        """RFC 8617 5.2 step 5: the lowest instance from which every AMS verifies, 0 for all."""
        for i in range(n - 1, 0, -1):
            try:
                ok, reason = self._check_ams(ams[i], chain.sets[i].ams[0], headers, hashes, keys)
            except _Temp:
                ok, reason = False, "key lookup failed"
            instances[i] = replace(instances[i], ams="pass" if ok else "fail", ams_domain=ams[i].domain,
                                   reason=instances[i].reason or reason)
            if not ok:
                return i + 1
        return 0

    @staticmethod
    def _done(result: str, instances: dict[int, ArcInstance], reason: str, chain: Chain,
              oldest: int | None = None) -> ArcResult:
        first = chain.sets.get(1)
        aar1 = first.aar[0].unfolded() if first and len(first.aar) == 1 else ""
        ordered = tuple(instances[i] for i in sorted(instances))
        return ArcResult(result, ordered, oldest, reason, aar1=aar1)
