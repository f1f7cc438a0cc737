"""A loopback DNS server that answers every query after a delay, each on its own timer, and
counts how many queries it holds at once: a resolver that serializes lookups never has more
than one outstanding."""

from __future__ import annotations

import threading

from tests.dmarc.loopdns import LoopbackDns

from mailwarden.resolver.static import StaticZone


class SlowDns(LoopbackDns):
    def __init__(self, delay: float, zone: StaticZone | None = None, drop: bool = False) -> None:
        self.delay = delay
        self.drop = drop  # never answer: every lookup runs into the resolver's timeout
        self._count_lock = threading.Lock()
        self.outstanding = 0
        self.most_outstanding = 0
        self.received = 0
        super().__init__(zone or StaticZone.from_text(""))

    def _on_udp_query(self, data: bytes, peer: tuple[str, int]) -> None:
        with self._count_lock:
            self.received += 1
            self.outstanding += 1
            self.most_outstanding = max(self.most_outstanding, self.outstanding)
        threading.Timer(self.delay, self._reply, (data, peer)).start()

    def _reply(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            if not self.drop:
                super()._on_udp_query(data, peer)
        except Exception:  # a closed socket at the end of a test, a malformed query
            pass
        finally:
            with self._count_lock:
                self.outstanding -= 1
