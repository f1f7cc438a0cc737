"""Verify every DKIM-Signature of a message, top down, up to a cap (RFC 6376 6, RFC 8301).

Result labels (RFC 8601 section 2.7.1; the table is in contrib/docs/dkim.md): a signature that
is never cryptographically checked because of a PERMFAIL (RFC 6376 section 6.1: bad or missing
tags, unknown algorithm or version, x= before t=, expired, t= in the future, no usable key) is
`permerror`, as OpenDKIM reports it; `fail` means the hashes were computed and did not match;
`policy` that they matched but local policy refuses the signature; `temperror` a DNS failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mailwarden.core.auth import DkimResult, DkimStatus
from mailwarden.core.model import Header
from mailwarden.core.ports import Resolver
from mailwarden.dkim.canon import BodyHash, body_hashes, canon_header
from mailwarden.dkim.keys import KeyRecordError, PublicKey, parse_key_record
from mailwarden.dkim.tags import Signature, TagError, parse_signature, parse_tags, strip_b_value
from mailwarden.errors import DnsTempError


@dataclass(frozen=True)
class VerifyPolicy:
    max_signatures: int = 5
    min_rsa_bits: int = 1024
    allow_sha1: bool = False
    on_body_length_extension: str = "policy"
    clock_drift: int = 300


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def header_data(sig: Signature, headers: Sequence[Header], sig_header: Header) -> bytes:
    """The canonical header block a signature covers: h= picked bottom up, then the signature
    itself with b= emptied and no final CRLF."""
    by_name: dict[str, list[Header]] = {}
    for h in headers:
        by_name.setdefault(h.name.lower().rstrip(" \t"), []).append(h)
    parts = []
    for name in sig.headers:
        instances = by_name.get(name)
        if instances:
            h = instances.pop()
            parts.append(canon_header(sig.header_canon, _enc(h.name), _enc(h.value)))
    own = canon_header(sig.header_canon, _enc(sig_header.name), strip_b_value(_enc(sig_header.value)))
    parts.append(own[:-2])
    return b"".join(parts)


@dataclass
class _Pending:
    header: Header
    sig: Signature
    key: PublicKey


class Verifier:
    def __init__(self, resolver: Resolver, clock: Callable[[], float], policy: VerifyPolicy) -> None:
        self.resolver = resolver
        self.clock = clock
        self.policy = policy

    def verify(
        self, headers: Sequence[Header], body: Callable[[], Iterable[bytes]]
    ) -> tuple[DkimResult, ...]:
        """Results in signature order. `body` gives the body chunks (called at most once)."""
        sig_headers = [h for h in headers if h.name.lower().rstrip(" \t") == "dkim-signature"]
        results: list[DkimResult | None] = []
        pending: list[tuple[int, _Pending]] = []
        for h in sig_headers[: self.policy.max_signatures]:
            outcome = self._prepare(h)
            if isinstance(outcome, DkimResult):
                results.append(outcome)
            else:
                pending.append((len(results), outcome))
                results.append(None)
        if pending:
            wanted = [_body_key(p.sig) for _, p in pending]
            # Bodies come from the milter or core.wire: CRLF line ends already.
            hashes = body_hashes(body(), wanted, fix_lf=False)
            for i, p in pending:
                results[i] = self._check(p, headers, hashes[_body_key(p.sig)])
        return tuple(r for r in results if r is not None)

    def _prepare(self, header: Header) -> DkimResult | _Pending:
        raw = _enc(header.value)
        try:
            _, sig = parse_signature(raw)
        except TagError as exc:
            return _unparsed(raw, DkimStatus.PERMERROR, f"bad signature: {exc}")
        now = self.clock()
        drift = self.policy.clock_drift
        if sig.expires is not None and sig.expires + drift < now:
            return _result(sig, DkimStatus.PERMERROR, "signature expired (x=)")
        if sig.timestamp is not None and sig.timestamp - drift > now:
            return _result(sig, DkimStatus.PERMERROR, "signature timestamp t= is in the future")
        name = f"{sig.selector}._domainkey.{sig.domain}"
        try:
            records = self.resolver.txt(name)
        except DnsTempError as exc:
            return _result(sig, DkimStatus.TEMPERROR, f"key lookup failed: {exc.reason}")
        if not records:
            return _result(sig, DkimStatus.PERMERROR, f"no key record at {name}")
        try:
            key = _first_key(records)
        except KeyRecordError as exc:
            return _result(sig, DkimStatus.PERMERROR, str(exc))
        why = ""
        if key.key_type != sig.key_type:
            why = f"key type {key.key_type} does not match a={sig.algorithm}"
        elif key.hashes and sig.hash_name not in key.hashes:
            why = f"key h= does not allow {sig.hash_name}"
        elif key.strict_identity and sig.identity and sig.identity.rpartition("@")[2].lower() != sig.domain:
            why = "key t=s forbids a subdomain in i="
        if why:
            return _result(sig, DkimStatus.PERMERROR, why, key.bits)
        return _Pending(header, sig, key)

    def _check(self, p: _Pending, headers: Sequence[Header], bh: BodyHash) -> DkimResult:
        status, why = self._status(p, headers, bh)
        return _result(p.sig, status, why, p.key.bits)

    def _status(self, p: _Pending, headers: Sequence[Header], bh: BodyHash) -> tuple[DkimStatus, str]:
        sig, key = p.sig, p.key
        if sig.length is not None and bh.total < sig.length:
            return DkimStatus.FAIL, f"body shorter than l={sig.length}"
        if bh.digest() != sig.body_hash:
            return DkimStatus.FAIL, "body hash did not verify"
        if not key.verify(sig.algorithm, sig.signature, header_data(sig, headers, p.header)):
            return DkimStatus.FAIL, "signature did not verify"
        if sig.algorithm == "rsa-sha1" and not self.policy.allow_sha1:
            return DkimStatus.POLICY, "rsa-sha1 is not acceptable (RFC 8301)"
        if key.key_type == "rsa" and key.bits < self.policy.min_rsa_bits:
            return DkimStatus.POLICY, f"{key.bits}-bit RSA key is below {self.policy.min_rsa_bits} bits"
        if sig.length is not None and bh.total > sig.length:
            extra = bh.total - sig.length
            return DkimStatus(self.policy.on_body_length_extension), \
                f"l={sig.length} leaves {extra} unsigned body bytes"
        return DkimStatus.PASS, "testing key (t=y)" if key.testing else ""


def _body_key(sig: Signature) -> tuple[str, str, int | None]:
    return (sig.body_canon, sig.hash_name, sig.length)


def _first_key(records: list[bytes]) -> PublicKey:
    first: KeyRecordError | None = None
    for record in records:
        try:
            return parse_key_record(record)
        except KeyRecordError as exc:
            first = first or exc
    assert first is not None
    raise first


def _result(sig: Signature, result: DkimStatus, reason: str, bits: int = 0) -> DkimResult:
    return DkimResult(result, sig.domain, sig.selector, sig.algorithm, bits, reason, sig.b_text, sig.identity)


def _unparsed(raw: bytes, result: DkimStatus, reason: str) -> DkimResult:
    """A result for a signature we could not parse, with whatever tags could be read."""
    tags = parse_tags(raw, lenient=True)

    def tag(name: str) -> str:
        return "".join(tags.get(name, b"").decode("ascii", "replace").split())

    return DkimResult(result, tag("d").lower(), tag("s"), tag("a").lower(), 0, reason, tag("b"), tag("i"))
