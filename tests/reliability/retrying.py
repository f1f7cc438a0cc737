"""An SMTP client that retries as a real MTA does, and the count at the sink."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.postfix import PostfixInstance, SubmitResult, unique_address


@dataclass
class Sent:
    rcpt: str
    attempts: list[SubmitResult] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def refused(self) -> bool:
        """The client saw a final answer that was not 2xx: a 5xx, or a 4xx on its last try."""
        return bool(self.attempts) and not self.attempts[-1].ok


def message(rcpt: str, subject: str, from_domain: str = "sender.test", extra: str = "",
            body: bytes = b"hello\r\n") -> bytes:
    return (f"{extra}From: a@{from_domain}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{rcpt}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n").encode() + body


def send(
    postfix: PostfixInstance, port: int, subject: str, *, tries: int = 3, from_domain: str = "sender.test",
    extra: str = "", body: bytes = b"hello\r\n", between: Callable[[int], object] | None = None,
) -> Sent:
    """One message, retried on a 4xx or a dropped session (as a queue runner would, here after a
    short pause), given up after `tries`; a 5xx is final."""
    sent = Sent(unique_address())
    raw = message(sent.rcpt, subject, from_domain, extra, body)
    for attempt in range(tries):
        if attempt and between is not None:
            between(attempt)
        res = postfix.submit(port, raw, f"bounce@{from_domain}", [sent.rcpt])
        sent.attempts.append(res)
        if res.ok or 500 <= res.code < 600:
            break
        time.sleep(0.2)
    return sent


def delivered(postfix: PostfixInstance, sent: Sent, wait: float = 10.0) -> int:
    """How many times the sink got the message: waits for the first when it was accepted."""
    if sent.accepted:
        try:
            postfix.sink.wait(sent.rcpt, timeout=wait)
        except Exception:
            pass
    else:
        time.sleep(0.3)
    return sum(1 for d in postfix.sink.deliveries if sent.rcpt in d.rcpts)


def exactly_once_or_refused(postfix: PostfixInstance, sent: Sent) -> str:
    """'delivered' or 'refused'; fails when the message was lost or delivered twice."""
    count = delivered(postfix, sent)
    assert count <= 1, f"{sent.rcpt} delivered {count} times"
    if sent.accepted:
        assert count == 1, f"{sent.rcpt} accepted ({sent.attempts[-1]}) but never delivered"
        return "delivered"
    assert count == 0
    assert sent.refused, sent.attempts
    return "refused"
