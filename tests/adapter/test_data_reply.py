"""Over inet: DATA is sent and answered, though nothing is decided there; over a unix socket it
is skipped (adapters/pymilter.ANSWER_DATA).

At DATA Postfix's smtpd hands the milter connection to cleanup. Over inet: (Nagle on in
Postfix), cleanup's first write waited for the milter host's delayed ACK of smtpd's last,
reply-less write: about 40 ms per message. A reply at DATA carries that ACK at once. Over a unix
socket no ACK is awaited, and the extra round trip would only cost throughput.
bench/inet_bench.py measures the stall through a real Postfix; here, the protocol that removes it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from tests.support.milterclient import P_NODATA, P_NR_DATA, MilterClient


@pytest.fixture
def inet_milter() -> Iterator[MilterClient]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = f"inet:{port}@127.0.0.1"
    as_root = ["--user", "root"] if os.geteuid() == 0 else []
    command = [sys.executable, "-m", "mailwarden", "serve", "--socket", spec, "--zone", "/dev/null",
               "--config", "/dev/null", *as_root]
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(command, stdout=quiet, stderr=quiet, stdin=quiet)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = MilterClient.connect(spec)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        client.optneg()
        yield client
        client.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_over_inet_data_is_negotiated_with_a_reply_and_answered(inet_milter: MilterClient) -> None:
    assert not inet_milter.protocol & (P_NODATA | P_NR_DATA)
    inet_milter.conn()
    inet_milter.helo()
    inet_milter.mail("<a@sender.test>")
    inet_milter.rcpt("<b@rcpt.test>")
    reply = inet_milter.data()
    assert (reply.action, reply.sent, reply.awaited) == ("continue", True, True)


def test_over_a_unix_socket_data_is_skipped(milter: MilterClient) -> None:
    assert milter.protocol & P_NODATA
