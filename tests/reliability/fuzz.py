"""A milter-protocol fuzzer that drives `mailwarden serve` over its socket (issue 17).

Each session opens a connection, negotiates, then sends a random run of frames: steps in any
order, ABORT anywhere, macros present or missing, strings with bytes that are not UTF-8 and with
NUL bytes, truncated frames, oversized frames, unknown commands. It then sends ABORT and a
known-good message whose From domain is unique to the session, and reads replies until that
message's own verdict arrives (an Authentication-Results edit naming the domain): whatever came
before, the connection must still answer. A session that ends in a truncated or oversized frame
is closed by the fuzzer (or by libmilter) and checked through the next one.

Run as a module for a long run (``nice -n 19 python -m tests.reliability.fuzz --inputs 1000000``);
tests/reliability/test_fuzz.py runs a seeded, bounded amount in CI.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.milterclient import ACTIONS_POSTFIX, FINAL, PROTOCOL_POSTFIX, SMFIR_PROGRESS

REPLY_WAIT = 30.0  # seconds one reply may take before the session counts as unanswered
FAILED_WAIT = 1.0  # after a connection's tempfail, how long to look for anything more


def frame(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + cmd + data


def cstr(*parts: bytes) -> bytes:
    return b"".join(p + b"\0" for p in parts)


class Words:
    """Strings as an MTA would send them, and as a broken or hostile one might."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def text(self, good: str, nul: bool = True) -> bytes:
        r = self.rng.random()
        if not nul and 0.75 <= r < 0.85:
            r = 0.5
        raw = good.encode()
        if r < 0.6:
            return raw
        if r < 0.75:  # not UTF-8
            i = self.rng.randrange(len(raw) + 1)
            return raw[:i] + bytes([self.rng.choice([0x80, 0xC3, 0xE9, 0xFF, 0xFE, 0xC0])]) + raw[i:]
        if r < 0.85:  # a NUL inside: the C string ends early, the rest becomes the next field
            i = self.rng.randrange(len(raw) + 1)
            return raw[:i] + b"\0" + raw[i:]
        if r < 0.92:
            return b""
        junk = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 40)))
        return junk if nul else junk.replace(b"\0", b"")


@dataclass
class Counts:
    sessions: int = 0
    frames: int = 0
    replies: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    closed_by_milter: int = 0
    cut_by_fuzzer: int = 0
    unanswered: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.sessions} sessions, {self.frames} frames, {self.replies} replies,"
                f" final verdicts {dict(self.verdicts)}, {self.closed_by_milter} closed by the milter,"
                f" {self.cut_by_fuzzer} cut by the fuzzer, {self.unanswered} unanswered")


class Session:
    def __init__(self, rng: random.Random, seq: int) -> None:
        self.rng = rng
        self.words = Words(rng)
        self.seq = seq
        self.frames: list[bytes] = []
        self.cut = False  # ends in a truncated or oversized frame: no known-good message after it

    def macros(self, stage: bytes, pairs: dict[str, str]) -> None:
        if self.rng.random() < 0.2:  # missing macros
            return
        # No NUL inside a macro value: an odd number of strings in a macro frame makes libmilter's
        # smfi_getsymval() read past the end of its list and crash the worker (SIGSEGV, found by
        # this fuzzer). Postfix never sends one; the supervisor restarts the worker if one comes.
        data = stage + b"".join(cstr(k.encode(), self.words.text(v, nul=False)) for k, v in pairs.items())
        self.frames.append(frame(b"D", data))

    def step(self) -> None:
        rng, w = self.rng, self.words
        kind = rng.choice(["conn", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eom",
                           "abort", "unknown", "macro", "garbage"])
        if kind == "conn":
            self.macros(b"C", {"j": "mx.ci.test", "{daemon_name}": "mx.ci.test", "_": "c.test [192.0.2.9]"})
            family = rng.choice([b"4", b"6", b"L", b"U", b"X"])
            addr = rng.choice([b"192.0.2.9", b"2001:db8::9", b"/tmp/s", b"not an address", b""])
            tail = b"" if family == b"U" else struct.pack("!H", rng.randrange(65536)) + cstr(addr)
            self.frames.append(frame(b"C", cstr(w.text("client.test")) + family + tail))
        elif kind == "helo":
            self.frames.append(frame(b"H", cstr(w.text("client.test"))))
        elif kind == "mail":
            self.macros(b"M", {"{auth_authen}": "user1", "i": f"QF{self.seq:X}"})
            params = [w.text("SIZE=100")] if rng.random() < 0.3 else []
            self.frames.append(frame(b"M", cstr(w.text("<a@sender.test>"), *params)))
        elif kind == "rcpt":
            self.frames.append(frame(b"R", cstr(w.text("<b@rcpt.test>"))))
        elif kind == "data":
            self.frames.append(frame(b"T"))
        elif kind == "header":
            name = rng.choice(["From", "To", "Subject", "DKIM-Signature", "Authentication-Results",
                               "Content-Type", "Received", "X-H"])
            value = rng.choice([" a@sender.test", " v=1; a=rsa-sha256; d=x.test; s=s; b=; bh=",
                                " multipart/mixed; boundary=b", " " + "x" * rng.randrange(2000)])
            self.frames.append(frame(b"L", cstr(w.text(name), w.text(value))))
        elif kind == "eoh":
            self.frames.append(frame(b"N"))
        elif kind == "body":
            self.frames.append(frame(b"B", rng.choice([b"hello\r\n", b"--b\r\n\r\n", b"\0\xff\r\n",
                                                        b"x" * rng.randrange(1, 65535)])))
        elif kind == "eom":
            self.frames.append(frame(b"E"))
        elif kind == "abort":
            self.frames.append(frame(b"A"))
        elif kind == "unknown":
            self.frames.append(frame(b"U", cstr(w.text("VRFY x"))))
        elif kind == "macro":
            self.macros(rng.choice([b"C", b"H", b"M", b"R", b"T", b"L", b"N", b"E", b"Z"]), {"i": "Q1"})
        else:  # a command letter libmilter does not know
            self.frames.append(frame(bytes([rng.choice(b"FGIJKPSVWXYZ")]), w.text("junk")))

    def build(self) -> None:
        for _ in range(self.rng.randrange(0, 16)):
            self.step()
        end = self.rng.random()
        if end < 0.03:  # truncated: a length that promises more than comes
            self.frames.append(struct.pack("!I", 1000) + b"Lpartial")
            self.cut = True
        elif end < 0.05:  # oversized: past libmilter's limit
            self.frames.append(struct.pack("!I", 70 * 1024 * 1024) + b"B")
            self.cut = True

    def known_good(self) -> bytes:
        domain = f"s{self.seq}.fuzz.test"
        frames = [frame(b"A"),
                  frame(b"D", b"M" + cstr(b"i", f"QG{self.seq:X}".encode())),
                  frame(b"M", cstr(f"<a@{domain}>".encode())),
                  frame(b"R", cstr(b"<b@rcpt.test>")),
                  frame(b"T"),
                  frame(b"L", cstr(b"From", f" a@{domain}".encode())),
                  frame(b"L", cstr(b"Subject", b" good")),
                  frame(b"N"),
                  frame(b"B", b"hello\r\n"),
                  frame(b"E")]
        return b"".join(frames)


class Wire:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(REPLY_WAIT)
        self.sock.connect(path)
        self.buf = bytearray()

    def read(self) -> tuple[bytes, bytes] | None:
        while True:
            if len(self.buf) >= 4:
                n = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) >= 4 + n:
                    pkt = bytes(self.buf[4:4 + n])
                    del self.buf[:4 + n]
                    return pkt[:1], pkt[1:]
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def run_session(path: str, rng: random.Random, seq: int, counts: Counts) -> None:
    s = Session(rng, seq)
    s.build()
    counts.sessions += 1
    wire = Wire(path)
    try:
        wire.sock.sendall(frame(b"O", struct.pack("!III", 6, ACTIONS_POSTFIX, PROTOCOL_POSTFIX)))
        opt = wire.read()
        if opt is None or opt[0] != b"O":
            counts.failures.append(f"session {seq}: no OPTNEG reply")
            return
        payload = b"".join(s.frames) + (b"" if s.cut else s.known_good())
        counts.frames += len(s.frames) + (0 if s.cut else 10)
        try:
            wire.sock.sendall(payload)
        except OSError:  # libmilter closed the connection part way (a frame it refuses)
            counts.closed_by_milter += 1
            return
        if s.cut:
            counts.cut_by_fuzzer += 1
            return
        marker = f"header.from=s{seq}.fuzz.test".encode()
        failed_connection = False
        while True:
            try:
                pkt = wire.read()
            except TimeoutError:
                if failed_connection:  # every message on it temp-fails, at its first reply
                    counts.verdicts["tempfail (connection failed at CONNECT)"] += 1
                    return
                counts.unanswered += 1
                counts.failures.append(f"session {seq}: no reply to the known-good message")
                return
            except OSError:
                pkt = None
            if pkt is None:
                counts.closed_by_milter += 1
                return
            cmd, data = pkt
            if cmd == SMFIR_PROGRESS:
                continue
            counts.replies += 1
            if cmd == b"y" and data.startswith(b"451 4.3.0") and not failed_connection:
                # A client name that is not UTF-8 and no address: the known-good message's MAIL
                # is answered so, and libmilter drops the rest of it. Its reply came.
                failed_connection = True
                wire.sock.settimeout(FAILED_WAIT)
            if cmd in (b"i", b"h") and marker in data:
                # Our message's edit: its verdict is the next final reply.
                final = wire.read()
                verdict = FINAL.get(final[0], repr(final[0])) if final else "closed"
                counts.verdicts[verdict] += 1
                if verdict != "accept":
                    counts.failures.append(f"session {seq}: known-good message got {verdict}")
                return
    finally:
        wire.close()


def fuzz(path: str, seed: int, inputs: int, check: Callable[[], str | None],
         progress: Callable[[Counts], None] | None = None, check_every: int = 100) -> Counts:
    """Sessions until `inputs` frames were sent; `check()` (the worker still there, a known-good
    message on a fresh connection) every `check_every` sessions and at the end."""
    rng = random.Random(seed)
    counts = Counts()
    seq = 0
    while counts.frames < inputs:
        run_session(path, rng, seq, counts)
        seq += 1
        if seq % check_every == 0:
            problem = check()
            if problem:
                counts.failures.append(f"after session {seq}: {problem}")
            if progress is not None:
                progress(counts)
        if len(counts.failures) > 20:
            break
    problem = check()
    if problem:
        counts.failures.append(f"at the end: {problem}")
    return counts


def main() -> int:
    from tests.reliability.fuzzcheck import Served

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="frames to send in all")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    started = time.monotonic()
    with Served() as served:
        def report(c: Counts) -> None:
            print(f"{time.monotonic() - started:7.0f}s {c.line()}", flush=True)

        counts = fuzz(served.path, args.seed, args.inputs, served.check, report, check_every=1000)
        report(counts)
        print("traceback lines in the log:", served.tracebacks(), flush=True)
    for f in counts.failures:
        print("FAILURE:", f)
    return 1 if counts.failures else 0


if __name__ == "__main__":
    sys.exit(main())
