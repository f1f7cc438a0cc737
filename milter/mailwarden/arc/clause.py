"""The arc= clause of our Authentication-Results header (RFC 8617 10.2, RFC 8601 registry)."""

from __future__ import annotations

from authres.arc import ARCAuthenticationResult
from authres.core import AuthenticationResult, AuthenticationResultProperty

from mailwarden.arc.result import ArcResult


def arc_clause(arc: ArcResult) -> AuthenticationResult:
    clause = ARCAuthenticationResult(result=arc.result)
    if arc.result == "pass" and arc.oldest_pass is not None:
        # authres drops a 0 (falsy) given to its constructor: 0 is what says "every AMS verified".
        clause.properties.append(AuthenticationResultProperty("header", "oldest-pass", str(arc.oldest_pass)))
    if arc.remote_ip:
        clause.properties.append(AuthenticationResultProperty("smtp", "remote-ip", arc.remote_ip))
    return clause
