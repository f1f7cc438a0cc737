"""Create DKIM-Signature header values through OpenSSL."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mailwarden.core.model import Header
from mailwarden.dkim.canon import body_hashes, canon_header
from mailwarden.dkim.keys import PrivateKey
from mailwarden.dkim.verify import _enc


@dataclass(frozen=True)
class SigningKey:
    name: str
    domain: str
    selector: str
    key: PrivateKey


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

    def header_list(self, headers: Sequence[Header]) -> list[str]:
        """h=: every present instance of the signed names, plus one more for oversigned names."""
        counts: dict[str, int] = {}
        for h in headers:
            key = h.name.lower()
            counts[key] = counts.get(key, 0) + 1
        out: list[str] = []
        for key, over in self._plan:  # type: ignore[attr-defined]
            n = counts.get(key, 0) + over
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
        bh_text = base64.b64encode(bh.digest()).decode("ascii")
        names = self.header_list(headers)
        signed = _signed_headers(hc, names, headers)
        values = []
        for k in keys:
            tags = [("v", "1"), ("a", k.key.algorithm), ("c", self.canonicalization), ("d", k.domain),
                    ("s", k.selector), ("t", str(int(now)))]
            if self.expire:
                tags.append(("x", str(int(now) + self.expire)))
            tags += [("h", ":".join(names)), ("bh", bh_text)]
            value = _fold(tags) + "\n\tb="
            data = signed + canon_header(hc, b"DKIM-Signature", _enc(value))[:-2]
            b = base64.b64encode(k.key.sign(data)).decode("ascii")
            values.append(value + "\n\t".join(b[i:i + 72] for i in range(0, len(b), 72)))
        return values


def _signed_headers(canon: str, names: list[str], headers: Sequence[Header]) -> bytes:
    by_name: dict[str, list[Header]] = {}
    for h in headers:
        by_name.setdefault(h.name.lower(), []).append(h)
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
