"""Create DKIM-Signature header values through OpenSSL.

Per message, only what the message decides is computed: the body hash (once for every key),
the canonical signed headers (once for every key), t=, x= and b=. The rest of each key's
header, folded and canonicalized, is a template cached per key and h= list: filling it is a
few string replacements instead of folding tags on every message.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mailwarden.core.model import Header
from mailwarden.dkim.canon import body_hashes, canon_header
from mailwarden.dkim.keys import PrivateKey
from mailwarden.dkim.verify import _enc

# Stand-ins for the per-message tag values in a template: control characters, which no tag
# value we write holds (a template where one shows up anyway is not used: see _template).
_T, _X, _BH = "\x01", "\x02", "\x03"
_BH_LEN = 44  # base64 of a SHA-256 digest
_TEMPLATES_MAX = 512  # distinct (key, h= list, t=/x= widths); cleared when full


@dataclass(frozen=True)
class SigningKey:
    name: str
    domain: str
    selector: str
    key: PrivateKey


@dataclass(frozen=True)
class _Template:
    """A key's DKIM-Signature value with stand-ins for t=, x= and bh=, and its canonical form
    (name included, no final CRLF) with the same stand-ins."""

    value: str
    canonical: bytes

    def fill(self, t: str, x: str, bh: str) -> tuple[str, bytes]:
        value, canonical = self.value, self.canonical
        for stand_in, real in ((_T, t), (_X, x), (_BH, bh)):
            if real:
                value = value.replace(stand_in * len(real), real, 1)
                canonical = canonical.replace(_enc(stand_in) * len(real), _enc(real), 1)
        return value, canonical


@dataclass(frozen=True)
class Signer:
    canonicalization: str = "relaxed/relaxed"
    headers: tuple[str, ...] = ("From",)
    oversign: tuple[str, ...] = ()
    expire: int = 0

    def __post_init__(self) -> None:
        # (name, oversigned) in configuration order, lower case, once each: fixed per config.
        over = {n.lower() for n in self.oversign}
        names = dict.fromkeys(n.lower() for n in (*self.headers, *self.oversign))
        object.__setattr__(self, "_plan", tuple((n, n in over) for n in names))
        object.__setattr__(self, "_templates", {})

    def header_list(self, headers: Sequence[Header]) -> list[str]:
        """h=: every present instance of the signed names, plus one more for oversigned names."""
        return self._names(_by_name(headers))

    def _names(self, by_name: dict[str, list[Header]]) -> list[str]:
        out: list[str] = []
        for key, over in self._plan:  # type: ignore[attr-defined]
            n = len(by_name.get(key, ())) + over
            if n:
                out.extend([key] * n)
        return out

    def sign(
        self,
        keys: Sequence[SigningKey],
        headers: Sequence[Header],
        body: Callable[[], Iterable[bytes]],
        now: float,
    ) -> list[str]:
        """One DKIM-Signature value (leading space, folded with "\\n\\t") per key, in key order."""
        hc, _, bc = self.canonicalization.partition("/")
        # Bodies come from the milter or core.wire: CRLF line ends already.
        bh = body_hashes(body(), [(bc, "sha256", None)], fix_lf=False)[(bc, "sha256", None)]
        bh_text = binascii.b2a_base64(bh.digest(), newline=False).decode("ascii")
        by_name = _by_name(headers)  # one pass over the headers for h= and the signed data
        names = tuple(self._names(by_name))
        signed = _canonical_headers(hc, names, by_name)
        t = str(int(now))
        x = str(int(now) + self.expire) if self.expire else ""
        values = []
        for k in keys:
            template = self._template(k, names, len(t), len(x))
            if template is not None:
                value, canonical = template.fill(t, x, bh_text)
            else:
                value = self._value(k, names, t, x, bh_text)
                canonical = canon_header(hc, b"DKIM-Signature", _enc(value))[:-2]
            b = binascii.b2a_base64(k.key.sign(signed + canonical), newline=False).decode("ascii")
            values.append(value + "\n\t".join([b[i:i + 72] for i in range(0, len(b), 72)]))
        return values

    def _value(self, key: SigningKey, names: Sequence[str], t: str, x: str, bh: str) -> str:
        """The signature's value up to the empty b=, folded."""
        tags = [("v", "1"), ("a", key.key.algorithm), ("c", self.canonicalization), ("d", key.domain),
                ("s", key.selector), ("t", t)]
        if x:
            tags.append(("x", x))
        tags += [("h", ":".join(names)), ("bh", bh)]
        return _fold(tags) + "\n\tb="

    def _template(self, key: SigningKey, names: tuple[str, ...], t_len: int, x_len: int) -> _Template | None:
        """The key's template for this h= list (folding depends on the widths of t= and x=);
        None if a fixed tag holds a stand-in character, so that it cannot be told apart."""
        cache: dict[tuple[object, ...], _Template | None] = self._templates  # type: ignore[attr-defined]
        ident = (key.domain, key.selector, key.key.algorithm, names, t_len, x_len)
        try:
            return cache[ident]
        except KeyError:
            pass
        fixed = "".join((key.domain, key.selector, key.key.algorithm, self.canonicalization, *names))
        template = None
        if not any(c in fixed for c in (_T, _X, _BH)):
            value = self._value(key, names, _T * t_len, _X * x_len, _BH * _BH_LEN)
            hc = self.canonicalization.partition("/")[0]
            template = _Template(value, canon_header(hc, b"DKIM-Signature", _enc(value))[:-2])
        if len(cache) >= _TEMPLATES_MAX:
            cache.clear()
        cache[ident] = template
        return template


def _by_name(headers: Sequence[Header]) -> dict[str, list[Header]]:
    by_name: dict[str, list[Header]] = {}
    for h in headers:
        by_name.setdefault(h.name.lower(), []).append(h)
    return by_name


def _signed_headers(canon: str, names: Sequence[str], headers: Sequence[Header]) -> bytes:
    return _canonical_headers(canon, names, _by_name(headers))


def _canonical_headers(canon: str, names: Sequence[str], by_name: dict[str, list[Header]]) -> bytes:
    """The h= headers canonicalized, each name's instances taken bottom up (`by_name` is used up)."""
    parts = []
    for name in names:
        instances = by_name.get(name)
        if instances:
            h = instances.pop()
            parts.append(canon_header(canon, _enc(h.name), _enc(h.value)))
    return b"".join(parts)


def _fold(tags: list[tuple[str, str]]) -> str:
    """ tag=value; ... folded at 78 columns, long h= lists broken at colons."""
    lines: list[str] = []
    line = ""
    for name, value in tags:
        item = f"{name}={value};"
        if name == "h" and len(item) > 70:
            pieces = value.split(":")
            item = f"{name}="
            for i, piece in enumerate(pieces):
                piece = piece + (":" if i < len(pieces) - 1 else ";")
                if len(line) + len(item) + len(piece) > 76:
                    lines.append(f"{line} {item}" if line else item)
                    line, item = "", ""
                item += piece
        if line and len(line) + 1 + len(item) > 76:
            lines.append(line)
            line = ""
        line = f"{line} {item}" if line else item
    lines.append(line)
    return " " + "\n\t".join(lines)
