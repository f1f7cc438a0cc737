"""A reload under mail through a real Postfix: nothing temp-failed, nothing lost, the new
configuration in force for the mail after it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from tests.support.postfix import MailwardenProcess, PostfixInstance, unique_address
from tests.support.processes import children, until

Factory = Callable[..., MailwardenProcess]


def _message(rcpt: str, hops: int = 0) -> bytes:
    received = b"".join(b"Received: from hop%d.example by relay.example; Sat, 21 Nov 2026 10:00:00 +0000\r\n"
                        % i for i in range(hops))
    return (received + b"From: a@sender.test\r\nTo: <" + rcpt.encode() + b">\r\nSubject: reload\r\n"
            b"Message-ID: <" + rcpt.encode() + b">\r\n\r\nhello\r\n")


def test_sighup_while_postfix_sends_loses_and_tempfails_nothing(
        postfix: PostfixInstance, mailwarden_factory: Factory) -> None:
    proc = mailwarden_factory("[milter]\nworkers = 2\n[hopcount]\nlimit = 50\n",
                              socket_path=postfix.alt_milter_path)
    assert proc.proc is not None and proc.config_path is not None
    until(lambda: len(children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    old = children(proc.proc.pid)
    proc.config_path.write_text("[milter]\nworkers = 2\n[hopcount]\nlimit = 5\n")
    results: list[tuple[str, int, str]] = []
    sent = threading.Semaphore(0)

    def client() -> None:
        for _ in range(8):
            rcpt = unique_address("reload")
            res = postfix.submit(postfix.alt, _message(rcpt), "a@sender.test", [rcpt])
            results.append((rcpt, res.code, res.stage))
            sent.release()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(6):  # the reload comes while mail flows
        sent.acquire(timeout=60)
    proc.proc.send_signal(signal.SIGHUP)
    for t in threads:
        t.join(120)
    until(lambda: "reloaded:" in proc.log(), 20, "the reload")
    until(lambda: not old & children(proc.proc.pid), 20, "the old workers to finish")  # type: ignore[union-attr]
    assert len(results) == 32
    assert [r for r in results if (r[1], r[2]) != (250, "data")] == [], proc.log()[-3000:]
    for rcpt, _, _ in results:
        postfix.wait_delivery(rcpt)
    # The new limit: 6 hops (plus Postfix's own) are too many now.
    rcpt = unique_address("reload-after")
    res = postfix.submit(postfix.alt, _message(rcpt, hops=6), "a@sender.test", [rcpt])
    assert (res.code, res.stage) == (554, "data"), res
