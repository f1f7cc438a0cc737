"""Slow DNS does not serialize sessions (issue 17): lookups hold no lock and release the GIL.

`mailwarden serve` with its live resolver pointed at a loopback DNS server that delays every
answer. A burst of sessions, each needing its own lookups, must have them all outstanding at
once, and each session gets its reply within a budget derived from the DNS timeout: the lookups
one message makes in sequence, each bounded by `[dns] timeout`.
"""

from __future__ import annotations

import threading

from tests.reliability.serve import LiveDnsMailwarden, serving
from tests.reliability.slowdns import SlowDns
from tests.support.milterclient import MilterClient, Reply

BURST = 16
DNS_TIMEOUT = 2.0
DELAY = 1.5
# SPF's TXT, DMARC's _dmarc TXT at the From domain and at its organizational domain, and one
# for luck: each lookup of a message waits for the one before it.
SEQUENTIAL_LOOKUPS = 4
BUDGET = SEQUENTIAL_LOOKUPS * DNS_TIMEOUT + 10  # plus starting a connection on a loaded machine


def config(dns: SlowDns) -> str:
    return f'[dns]\nnameservers = ["{dns.address}"]\ntimeout = {DNS_TIMEOUT}\n[hopcount]\nlimit = 0\n'


def burst(spec: str, count: int) -> list[Reply | BaseException]:
    results: list[Reply | BaseException] = [RuntimeError("no reply")] * count
    # Every session connected and past HELO before any sends MAIL (where the lookups start), so
    # that a loaded machine's slow start of 16 threads does not spread them out.
    ready = threading.Barrier(count, timeout=BUDGET)

    def one(i: int) -> None:
        raw = (f"From: a@s{i}.sender.test\r\nTo: b@rcpt.test\r\nSubject: {i}\r\n\r\nhello\r\n").encode()
        try:
            # The client's timeout is the budget: past it the MTA would have given up too.
            with MilterClient.connect(spec, timeout=BUDGET) as c:
                c.optneg()
                c.conn()
                c.helo()
                ready.wait()
                results[i] = c.send_message(raw, f"<a@s{i}.sender.test>")
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_burst_of_slow_dns_sessions_runs_side_by_side() -> None:
    """Measured: all 16 outstanding at once; with a lock around resolve() the burst misses the
    budget and never more than one is outstanding per worker."""
    dns = SlowDns(DELAY)
    try:
        with serving(LiveDnsMailwarden, config=config(dns)) as served:
            results = burst(served.spec, BURST)
    finally:
        dns.close()
    assert all(isinstance(r, Reply) and r.verdict == "accept" for r in results), results
    assert dns.received >= BURST * 2
    # Serialized lookups would never have more than one outstanding.
    assert dns.most_outstanding >= BURST // 2, (dns.most_outstanding, dns.received)


def test_dns_that_never_answers_gets_a_reply_within_the_budget() -> None:
    dns = SlowDns(DELAY, drop=True)
    try:
        with serving(LiveDnsMailwarden, config=config(dns)) as served:
            results = burst(served.spec, 4)
    finally:
        dns.close()
    # A DNS timeout is a temporary error, never a fail: the message is accepted with
    # temperror results, or temp-failed by a stage that must know; never lost nor rejected.
    assert all(isinstance(r, Reply) and r.verdict in ("accept", "tempfail") for r in results), results
