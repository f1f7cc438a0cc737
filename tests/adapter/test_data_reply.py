"""DATA is sent and answered, though nothing is decided there (adapters/pymilter._UNWANTED).

At DATA Postfix's smtpd hands the milter connection to cleanup. Over inet: (Nagle on in
Postfix), cleanup's first write waited for the milter host's delayed ACK of smtpd's last,
reply-less write: about 40 ms per message. A reply at DATA carries that ACK at once.
bench/inet_bench.py measures the stall through a real Postfix; here, the protocol that removes it.
"""

from __future__ import annotations

from tests.support.milterclient import P_NODATA, P_NR_DATA, MilterClient


def test_data_is_negotiated_with_a_reply_and_answered(milter: MilterClient) -> None:
    assert not milter.protocol & (P_NODATA | P_NR_DATA)
    milter.conn()
    milter.helo()
    milter.mail("<a@sender.test>")
    milter.rcpt("<b@rcpt.test>")
    reply = milter.data()
    assert (reply.action, reply.sent, reply.awaited) == ("continue", True, True)

