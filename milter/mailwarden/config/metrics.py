"""[metrics]: a Prometheus endpoint, aggregated over the workers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def split_listen(listen: str) -> tuple[str, int]:
    """(address, port) of "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT"; no address is loopback.
    ValueError when it is none of those."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "", listen
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    ipaddress.ip_address(host)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} is not in 1-65535")
    return host, int(port)


@dataclass(frozen=True)
class MetricsSection:
    listen: str = ""
    """Address and port of the Prometheus endpoint, e.g. "127.0.0.1:9797"; empty: no endpoint.
    A port alone listens on loopback only: another address must be written out ("0.0.0.0:9797",
    "[::]:9797"). The metrics are listed in contrib/docs/metrics.md."""

    def check(self) -> list[tuple[str, str]]:
        if not self.listen:
            return []
        try:
            split_listen(self.listen)
        except ValueError as exc:
            return [("listen", f"not ADDRESS:PORT: {self.listen!r} ({exc})")]
        return []
