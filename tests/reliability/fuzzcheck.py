"""The fuzzer's target: `mailwarden serve` with its embedded defaults, and its health checks."""

from __future__ import annotations

from tests.reliability.procs import children
from tests.support.milterclient import MilterClient
from tests.support.postfix import MailwardenProcess

GOOD = b"From: a@sender.test\r\nTo: b@rcpt.test\r\nSubject: fine\r\n\r\nhello\r\n"


class Served:
    def __init__(self) -> None:
        self.proc = MailwardenProcess()
        self.workers: list[int] = []

    def __enter__(self) -> Served:
        self.proc.start()
        assert self.proc.proc is not None
        self.workers = sorted(children(self.proc.proc.pid))
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.close()

    @property
    def path(self) -> str:
        return str(self.proc.socket_path)

    def check(self) -> str | None:
        """None when every worker is the one that started and a known-good message passes."""
        assert self.proc.proc is not None
        now = sorted(children(self.proc.proc.pid))
        if now != self.workers:
            return f"workers changed: {self.workers} -> {now}"
        with MilterClient.connect(self.proc.spec, timeout=30) as c:
            c.optneg()
            res = c.send_message(GOOD)
        if res.verdict != "accept":
            return f"known-good message got {res}"
        return None

    def tracebacks(self) -> int:
        return self.proc.log().count("Traceback")
