"""Create an ARC set (RFC 8617 5.1): ARC-Authentication-Results, ARC-Message-Signature, ARC-Seal.

The AMS is a DKIM signature in all but name and i= (relaxed/relaxed, the [dkim] header list,
never Received: Postfix hides its own from milters, so no milter can sign what the next hop sees).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mailwarden.arc.chain import Chain
from mailwarden.arc.verify import seal_data, seal_headers
from mailwarden.core.model import Header
from mailwarden.dkim.canon import body_hashes, canon_header
from mailwarden.dkim.sign import Signer, SigningKey, _fold, _signed_headers
from mailwarden.dkim.verify import _enc

_UNSIGNED = frozenset({"arc-seal", "arc-message-signature", "arc-authentication-results",
                       "authentication-results"})


def _b_value(value: str, signature: bytes) -> str:
    b = base64.b64encode(signature).decode("ascii")
    return value + "\n\t".join(b[i:i + 72] for i in range(0, len(b), 72))


@dataclass(frozen=True)
class ArcSealer:
    headers: tuple[str, ...]
    """Header names the ARC-Message-Signature covers when present ([dkim] headers)."""
    _signer: Signer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The DKIM signer's h= rule (every present instance of each name), without oversigning:
        # an AMS only has to hold up to the next hop, which checks it before changing anything.
        # Never an ARC header (RFC 8617 forbids ARC-Seal) nor Authentication-Results, which
        # the next hop removes or rewrites; [dkim] headers may name them, the AMS leaves them out.
        names = tuple(h for h in self.headers if h.lower() not in _UNSIGNED)
        object.__setattr__(self, "_signer", Signer("relaxed/relaxed", names))

    def seal(self, key: SigningKey, chain: Chain, cv: str, authres: str, headers: Sequence[Header],
             body: Callable[[], Iterable[bytes]], now: float) -> list[Header]:
        """The new set, top down (AS, AMS, AAR), for instance chain.count + 1.

        `authres` is our A-R value without its leading space; `headers` the message as delivered
        (minus the MTA's hidden Received). With cv=fail the seal covers only its own set, as the
        chain before it is not vouched for."""
        n = chain.count + 1
        t = str(int(now))
        aar = Header("ARC-Authentication-Results", f" i={n}; {authres}")
        bh = body_hashes(body(), [("relaxed", "sha256", None)], fix_lf=False)[("relaxed", "sha256", None)]
        names = self._signer.header_list(headers)
        ams_tags = [("i", str(n)), ("a", key.key.algorithm), ("c", "relaxed/relaxed"), ("d", key.domain),
                    ("s", key.selector), ("t", t), ("h", ":".join(names)),
                    ("bh", base64.b64encode(bh.digest()).decode("ascii"))]
        value = _fold(ams_tags) + "\n\tb="
        data = _signed_headers("relaxed", names, headers) + canon_header(
            "relaxed", b"ARC-Message-Signature", _enc(value))[:-2]
        ams = Header("ARC-Message-Signature", _b_value(value, key.key.sign(data)))
        seal_tags = [("i", str(n)), ("a", key.key.algorithm), ("cv", cv), ("d", key.domain),
                     ("s", key.selector), ("t", t)]
        value = _fold(seal_tags) + "\n\tb="
        unsigned = Header("ARC-Seal", value)
        earlier = seal_headers(chain, chain.count) if cv != "fail" and chain.count else []
        seal = Header("ARC-Seal", _b_value(value, key.key.sign(seal_data([*earlier, aar, ams, unsigned]))))
        return [seal, ams, aar]
