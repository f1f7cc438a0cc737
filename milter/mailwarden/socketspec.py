"""libmilter socket specs, checked before libmilter sees them (it reports only "cannot opensocket").

The forms libmilter's smfi_setconn accepts: `unix:/path` (or `local:/path`, or a bare `/path`),
`inet:PORT@HOST` and `inet6:PORT@HOST`, PORT a number or a service name, HOST an address or a
host name; `inet:PORT` alone listens on every address.
"""

from __future__ import annotations

import ipaddress
import re
import socket

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)+$")
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes, the last a NUL


def problem(spec: str) -> str | None:
    """Why `spec` is not a socket libmilter can listen on, or None when it is."""
    kind, sep, rest = spec.partition(":")
    if spec.startswith("/") or (sep and kind in ("unix", "local")):
        path = spec if spec.startswith("/") else rest
        if not path.startswith("/"):
            return f"{spec!r}: a unix socket needs an absolute path"
        if len(path.encode()) > _UNIX_PATH_MAX:
            return f"{spec!r}: a unix socket path is at most {_UNIX_PATH_MAX} bytes"
        return None
    if not sep or kind not in ("inet", "inet6"):
        return f"{spec!r}: not a libmilter socket (unix:/path, inet:PORT@HOST or inet6:PORT@HOST)"
    port, _, host = rest.partition("@")
    if port.isdigit():
        if not 1 <= int(port) <= 65535:
            return f"{spec!r}: port {port} is not in 1-65535"
    else:
        try:
            socket.getservbyname(port, "tcp")
        except OSError:
            return f"{spec!r}: {port!r} is neither a port number nor a service name"
    if host and not _is_host(host, kind):
        return f"{spec!r}: {host!r} is not an {'IPv6' if kind == 'inet6' else 'IPv4'} address or host name"
    return None


def _is_host(host: str, kind: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host)) and not host.replace(".", "").isdigit()
    return address.version == (6 if kind == "inet6" else 4)


def bind_problem(spec: str) -> str | None:
    """Why an inet socket cannot be bound (in use, not an address of this host), found by trying
    as libmilter does; None when it can, or for other kinds."""
    kind, _, rest = spec.partition(":")
    if kind not in ("inet", "inet6"):
        return None
    port, _, host = rest.partition("@")
    family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
    try:
        number = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), number))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
