#!/usr/bin/env python3
# A copy of the team's load tool (../shared/tools/milterload.py), kept unchanged but for this
# line, so that the reload-under-load test runs from a clean checkout.
"""milterload - a load generator for milters (Sendmail milter protocol v6).

Plays the MTA side of the milter protocol against a running milter and
measures throughput and per-message latency.  Python 3.11, stdlib only.

Per connection:   OPTNEG, [macros] CONNECT, [macros] HELO
Per message:      [macros] MAIL, [macros] RCPT..., [macros] DATA,
                  HEADER..., [macros] EOH, BODY (<= 65535-byte chunks),
                  [macros] EOM -> modifications + final action
Between messages on a reused connection: ABORT (as Postfix does), unless
--no-abort.  At the end: QUIT.  With --per-message-connections every
message gets its own connection (OPTNEG..QUIT).

Steps the milter asked to skip (SMFIP_NO*) are not sent, and replies are
not awaited for steps it declared no-reply (SMFIP_NR_*).

Latency of a message = from its first command (MAIL) to the final EOM
reply (or the earlier reply that decided the message); when the message
opens a connection (always with --per-message-connections, else the first
message of each connection) the connection setup is included.
Throughput = completed messages / wall time of the whole run.  Client CPU
(user+sys of this process) is reported so the instrument's own cost is
visible.  Exit status: 0 if every message completed without error and
every --expect-header matched every message, else 1.

Examples:
  milterload.py --socket unix:/run/opendkim/opendkim.sock \\
      --eml msg.eml --concurrency 32 --messages 2000 \\
      --expect-header DKIM-Signature --json
  milterload.py --socket inet:127.0.0.1:8891 --dir corpus/ \\
      --client-addr 192.0.2.10 --expect-header 'Authentication-Results:dkim=pass'
"""

import argparse
import asyncio
import ipaddress
import json
import math
import os
import socket
import struct
import sys
import time
from collections import Counter, deque

# Commands, MTA -> milter
SMFIC_ABORT, SMFIC_BODY, SMFIC_CONNECT, SMFIC_MACRO = b"A", b"B", b"C", b"D"
SMFIC_BODYEOB, SMFIC_HELO, SMFIC_HEADER, SMFIC_MAIL = b"E", b"H", b"L", b"M"
SMFIC_EOH, SMFIC_OPTNEG, SMFIC_QUIT, SMFIC_RCPT, SMFIC_DATA = b"N", b"O", b"Q", b"R", b"T"

# Replies, milter -> MTA.  Modifications are only legal in reply to EOM.
MODIFICATIONS = {
    b"+": "addrcpt", b"-": "delrcpt", b"2": "addrcpt_par", b"b": "replbody",
    b"e": "chgfrom", b"h": "addheader", b"i": "insheader", b"m": "chgheader",
    b"q": "quarantine",
}
FINAL = {
    b"a": "accept", b"c": "continue", b"d": "discard", b"r": "reject",
    b"t": "tempfail", b"y": "replycode", b"4": "shutdown", b"f": "conn_fail",
}
SMFIR_PROGRESS, SMFIR_SKIP = b"p", b"s"

# Option negotiation
MILTER_VERSION = 6
ACTIONS_ALL = 0x1FF            # SMFIF_ADDHDRS .. SMFIF_SETSYMLIST
PROTO_OFFER = 0x1FFFFF         # every v6 step flag incl. SMFIP_HDR_LEADSPC
P_NOCONNECT, P_NOHELO, P_NOMAIL, P_NORCPT = 0x1, 0x2, 0x4, 0x8
P_NOBODY, P_NOHDRS, P_NOEOH, P_NR_HDR = 0x10, 0x20, 0x40, 0x80
P_NODATA = 0x200
P_NR_CONN, P_NR_HELO, P_NR_MAIL, P_NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
P_NR_DATA, P_NR_EOH, P_NR_BODY, P_HDR_LEADSPC = 0x10000, 0x40000, 0x80000, 0x100000
MACRO_STAGES = ["connect", "helo", "mail", "rcpt", "data", "eom", "eoh"]

CHUNK = 65535      # largest SMFIC_BODY payload libmilter accepts by default

SAMPLE_HEADERS = [
    ("From", "Alice Example <alice@example.com>"),
    ("To", "Bob Example <bob@example.net>"),
    ("Subject", "milterload sample message"),
    ("Date", "Mon, 01 Jan 2024 12:00:00 +0000"),
    ("Message-ID", "<milterload-sample@example.com>"),
    ("MIME-Version", "1.0"),
    ("Content-Type", "text/plain; charset=us-ascii"),
]


class ProtocolError(Exception):
    pass


def packet(cmd, data=b""):
    return struct.pack("!I", len(data) + 1) + cmd + data


def cstr(*parts):
    return b"".join(p.encode() + b"\0" if isinstance(p, str) else p + b"\0" for p in parts)


def macro_packet(stage_cmd, macros):
    return packet(SMFIC_MACRO, stage_cmd + cstr(*[x for kv in macros.items() for x in kv]))


class Message:
    """An RFC 5322 message split into milter HEADER packets and BODY chunks."""

    def __init__(self, name, raw):
        self.name = name
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if raw.startswith(b"From "):            # mbox separator line
            raw = raw.partition(b"\r\n")[2]
        if raw.startswith(b"\r\n"):
            head, body = b"", raw[2:]
        else:
            head, sep, body = raw.partition(b"\r\n\r\n")
            if not sep:
                head, body = raw.rstrip(b"\r\n"), b""
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.headers = []                   # (name, value) as bytes
        for line in head.split(b"\r\n") if head else []:
            if line[:1] in (b" ", b"\t") and self.headers:
                n, v = self.headers[-1]     # folded: libmilter wants LF inside values
                self.headers[-1] = (n, v + b"\n" + line)
            elif b":" in line:
                n, v = line.split(b":", 1)
                self.headers.append((n.rstrip(), v))
            else:
                raise ValueError(f"{name}: malformed header line {line[:60]!r}")
        self.body = body
        self.size = len(raw)
        self._hdr_cache = {}
        self.body_packets = [packet(SMFIC_BODY, body[i:i + CHUNK]) for i in range(0, len(body), CHUNK)]

    def header_packets(self, leadspc):
        pk = self._hdr_cache.get(leadspc)
        if pk is None:
            pk = []
            for n, v in self.headers:
                if not leadspc and v[:1] == b" ":
                    v = v[1:]               # what Sendmail does without SMFIP_HDR_LEADSPC
                pk.append(packet(SMFIC_HEADER, cstr(n, v)))
            self._hdr_cache[leadspc] = pk
        return pk


def sample_message(body_bytes):
    line = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n"
    body = (line * (body_bytes // len(line) + 1))[:max(body_bytes - 2, 0)] + b"\r\n"
    head = b"".join(f"{n}: {v}\r\n".encode() for n, v in SAMPLE_HEADERS)
    return Message("<built-in sample>", head + b"\r\n" + body)


def load_messages(args):
    paths = []
    if args.eml:
        paths += args.eml
    if args.dir:
        paths += sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir)
                        if os.path.isfile(os.path.join(args.dir, f)))
    if not paths:
        return [sample_message(args.sample_body_bytes)]
    msgs = []
    for p in paths:
        with open(p, "rb") as f:
            msgs.append(Message(p, f.read()))
    return msgs


def parse_expect(specs):
    out = []
    for s in specs or []:
        name, _, needle = s.partition(":")
        out.append((s, name.strip().lower().encode(), needle.encode()))
    return out


class Stats:
    def __init__(self):
        self.latencies = []
        self.final = Counter()
        self.stage = Counter()
        self.mods = Counter()
        self.hdr_added = Counter()
        self.hdr_deleted = Counter()
        self.replies = Counter()
        self.expect = Counter()
        self.errors = Counter()
        self.error_samples = []
        self.connections = 0
        self.negotiated = None
        self.shown = 0

    def error(self, kind, detail):
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail}")


class PacketProtocol(asyncio.Protocol):
    """Splits the milter's byte stream into packets; one waiter at a time.
    (A bare Protocol costs the client far less CPU per round trip than
    StreamReader, which matters for milters that want a reply to every step.)"""

    def __init__(self, quickack=False):
        self.buf = bytearray()
        self.packets = deque()
        self.waiter = None
        self.lost = None
        self.transport = None
        self.can_write = None       # set while the kernel buffer is full
        self.quickack = quickack
        self.sock = None

    def connection_made(self, transport):
        self.transport = transport
        if self.quickack:
            self.sock = transport.get_extra_info("socket")

    def data_received(self, data):
        if self.sock is not None:   # re-arm: Linux falls back to delayed ACKs
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        buf = self.buf
        buf += data
        while len(buf) >= 4:
            length = int.from_bytes(buf[:4], "big")
            if length < 1 or length > 16 * 1024 * 1024:
                self.lost = ProtocolError(f"bad packet length {length}")
                self.transport.abort()
                break
            if len(buf) < 4 + length:
                break
            self.packets.append(bytes(buf[4:4 + length]))
            del buf[:4 + length]
        self._wake()

    def connection_lost(self, exc):
        self.lost = self.lost or exc or ConnectionResetError("connection closed by milter")
        self._wake()
        self.resume_writing()

    def pause_writing(self):
        self.can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        fut, self.can_write = self.can_write, None
        if fut and not fut.done():
            fut.set_result(None)

    def _wake(self):
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def read(self):
        while not self.packets:
            if self.lost is not None:
                raise self.lost
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        pkt = self.packets.popleft()
        return pkt[:1], pkt[1:]


class MilterConnection:
    def __init__(self, args, stats):
        self.args, self.stats = args, stats
        self.transport = self.proto_obj = None
        self.out = []               # packets not yet written (no reply awaited)
        self.proto = 0
        self.need_abort = False

    def put(self, data):
        self.out.append(data)

    async def flush(self):
        """Write everything queued in one go (fewer syscalls than one per packet)."""
        if self.out:
            self.transport.write(b"".join(self.out))
            self.out.clear()
        if self.proto_obj.can_write:
            await self.proto_obj.can_write

    def read(self):
        return self.proto_obj.read()

    async def open(self):
        a = self.args
        loop = asyncio.get_running_loop()
        if a.socket_kind == "unix":
            self.transport, self.proto_obj = await loop.create_unix_connection(PacketProtocol, a.socket_addr)
        else:
            self.transport, self.proto_obj = await loop.create_connection(
                lambda: PacketProtocol(a.tcp_quickack), *a.socket_addr)
        self.stats.connections += 1
        self.put(packet(SMFIC_OPTNEG, struct.pack("!III", MILTER_VERSION, ACTIONS_ALL, PROTO_OFFER)))
        await self.flush()
        cmd, data = await self.read()
        if cmd != SMFIC_OPTNEG or len(data) < 12:
            raise ProtocolError(f"bad OPTNEG reply {cmd!r}")
        version, actions, proto = struct.unpack("!III", data[:12])
        if proto & ~PROTO_OFFER & 0x0FFFFFFF:
            raise ProtocolError(f"milter requested unoffered protocol flags 0x{proto:x}")
        self.proto = proto
        if self.stats.negotiated is None:
            symlist, rest = {}, data[12:]
            while len(rest) >= 5:
                (where,), (macros, _, rest) = struct.unpack("!I", rest[:4]), rest[4:].partition(b"\0")
                key = MACRO_STAGES[where] if where < len(MACRO_STAGES) else str(where)
                symlist[key] = macros.decode(errors="replace")
            self.stats.negotiated = {"version": version, "actions": f"0x{actions:x}",
                                     "protocol": f"0x{proto:x}", "macros_requested": symlist}
        # connection-level steps
        if not proto & P_NOCONNECT:
            self.put(macro_packet(SMFIC_CONNECT, a.connect_macros))
            res = await self.command(SMFIC_CONNECT, a.connect_data, not proto & P_NR_CONN)
            if res:
                return "connect", res
        if not proto & P_NOHELO:
            res = await self.command(SMFIC_HELO, cstr(a.helo), not proto & P_NR_HELO)
            if res:
                return "helo", res
        return None

    async def command(self, cmd, data, want_reply):
        """Send one command; return None for 'continue', else the decisive reply."""
        self.put(packet(cmd, data))
        if not want_reply:
            return None
        await self.flush()
        return await self.reply()

    async def reply(self, allow_skip=False):
        while True:
            rcmd, rdata = await self.read()
            if rcmd == b"c":
                return None
            if rcmd == SMFIR_PROGRESS:
                continue
            if rcmd == SMFIR_SKIP and allow_skip:
                return rcmd
            if rcmd in FINAL:
                return rcmd + rdata
            raise ProtocolError(f"unexpected reply {rcmd!r}")

    async def message(self, msg, seq, t0):
        """Run one message transaction; record the outcome into stats."""
        a, proto = self.args, self.proto
        put = self.put
        if self.need_abort and not a.no_abort:
            put(packet(SMFIC_ABORT))
        self.need_abort = True
        qid = f"{a.qid_prefix}{seq:X}"
        stage, res = None, None
        if not proto & P_NOMAIL:
            put(macro_packet(SMFIC_MAIL, {"i": qid, **a.mail_macros}))
            res = await self.command(SMFIC_MAIL, a.mail_data, not proto & P_NR_MAIL)
            stage = "mail"
        if res is None and not proto & P_NORCPT:
            stage = "rcpt"
            refused = 0
            for rdata, rmac in a.rcpts:
                put(macro_packet(SMFIC_RCPT, {"i": qid, **rmac}))
                r = await self.command(SMFIC_RCPT, rdata, not proto & P_NR_RCPT)
                if r and r[:1] in (b"r", b"t", b"y"):
                    refused, res = refused + 1, r      # only this recipient is refused
                elif r:
                    res = r
                    break
            if res and res[:1] in (b"r", b"t", b"y") and refused < len(a.rcpts):
                res = None
        if res is None and not proto & P_NODATA:
            put(macro_packet(SMFIC_DATA, {"i": qid}))
            res, stage = await self.command(SMFIC_DATA, b"", not proto & P_NR_DATA), "data"
        if res is None and not proto & P_NOHDRS:
            stage, want = "header", not proto & P_NR_HDR
            for hp in msg.header_packets(bool(proto & P_HDR_LEADSPC)):
                put(hp)
                if want:
                    await self.flush()
                    res = await self.reply()
                    if res:
                        break
        if res is None and not proto & P_NOEOH:
            put(macro_packet(SMFIC_EOH, {"i": qid}))
            res, stage = await self.command(SMFIC_EOH, b"", not proto & P_NR_EOH), "eoh"
        if res is None and not proto & P_NOBODY:
            stage, want = "body", not proto & P_NR_BODY
            for bp in msg.body_packets:
                put(bp)
                if want:
                    await self.flush()
                    res = await self.reply(allow_skip=True)
                    if res:
                        break
            if res == SMFIR_SKIP:
                res = None
        mods = []
        if res is None:
            stage = "eom"
            put(macro_packet(SMFIC_BODYEOB, {"i": qid}))
            put(packet(SMFIC_BODYEOB))
            await self.flush()
            while True:
                rcmd, rdata = await self.read()
                if rcmd in MODIFICATIONS:
                    mods.append((rcmd, rdata))
                elif rcmd == SMFIR_PROGRESS:
                    continue
                elif rcmd in FINAL:
                    res = rcmd + rdata
                    break
                else:
                    raise ProtocolError(f"unexpected reply {rcmd!r} to EOM")
        self.record(msg, stage, res, mods, time.perf_counter() - t0)
        return stage, res

    def record(self, msg, stage, res, mods, elapsed):
        st = self.stats
        st.latencies.append(elapsed)
        action = FINAL[res[:1]]
        if action == "replycode":
            action += "_" + res[1:4].decode(errors="replace")
            st.replies[res[1:].rstrip(b"\0").decode(errors="replace")[:200]] += 1
        st.final[action] += 1
        st.stage[stage] += 1
        added = []
        for rcmd, rdata in mods:
            kind = MODIFICATIONS[rcmd]
            if rcmd in (b"i", b"m"):
                rdata = rdata[4:]          # drop the header index
            if rcmd in (b"h", b"i", b"m"):
                name, _, rest = rdata.partition(b"\0")
                value = rest.rstrip(b"\0")
                if rcmd == b"m" and not value:
                    kind = "delheader"
                    st.hdr_deleted[name.decode(errors="replace")] += 1
                else:
                    added.append((name, value))
                    st.hdr_added[name.decode(errors="replace")] += 1
            st.mods[kind] += 1
        for spec, name, needle in self.args.expect_parsed:
            if any(n.lower() == name and needle in v for n, v in added):
                st.expect[spec] += 1
        if st.shown < self.args.show:
            st.shown += 1
            print(f"--- {msg.name}: stage={stage} final={action}", file=sys.stderr)
            for rcmd, rdata in mods:
                print(f"  {MODIFICATIONS[rcmd]}: {rdata!r}", file=sys.stderr)

    def close(self, quit=True):
        if self.transport is None:
            return
        if quit and self.proto_obj.lost is None:
            self.transport.write(packet(SMFIC_QUIT))
        self.transport.close()              # flushes what is buffered, then closes
        self.transport = None


async def worker(args, msgs, stats, counter):
    conn = None
    while True:
        seq = next(counter)
        if seq >= args.messages:
            break
        msg = msgs[seq % len(msgs)]
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(args.timeout):
                if conn is None:
                    conn = MilterConnection(args, stats)
                    early = await conn.open()
                    if early:                         # connection-level decision
                        conn.record(msg, early[0], early[1], [], time.perf_counter() - t0)
                        conn.close()
                        conn = None
                        continue
                stage, res = await conn.message(msg, seq, t0)
            if res[:1] in (b"4", b"f") or args.per_message_connections:
                conn.close(quit=res[:1] not in (b"4", b"f"))
                conn = None
        except (TimeoutError, ConnectionError, OSError, ProtocolError) as e:
            stats.error(type(e).__name__, str(e)[:200] or "timeout")
            if conn is not None:
                conn.close(quit=False)
            conn = None
            if sum(stats.errors.values()) >= args.max_errors:
                break                               # milter is gone: stop, do not spin
    if conn is not None:
        conn.close()


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = math.ceil(p / 100.0 * len(sorted_vals)) - 1      # nearest-rank
    return sorted_vals[max(0, min(len(sorted_vals) - 1, k))]


async def run(args, msgs):
    stats = Stats()
    counter = iter(range(1 << 62))
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(args, msgs, stats, counter)
                           for _ in range(args.concurrency)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await asyncio.sleep(0.05)               # let the closing transports send QUIT
    lat = sorted(stats.latencies)
    done = len(lat)
    ms = lambda v: None if v is None else round(v * 1000, 3)
    result = {
        "socket": args.socket, "concurrency": args.concurrency,
        "messages_requested": args.messages, "messages_completed": done,
        "connection_mode": "per-message" if args.per_message_connections else "reuse",
        "inputs": sorted({m.name for m in msgs}),
        "avg_message_bytes": round(sum(m.size for m in msgs) / len(msgs)),
        "elapsed_s": round(elapsed, 4),
        "msgs_per_s": round(done / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": {"p50": ms(percentile(lat, 50)), "p95": ms(percentile(lat, 95)),
                       "p99": ms(percentile(lat, 99)), "max": ms(lat[-1] if lat else None),
                       "mean": ms(sum(lat) / done if done else None)},
        "final_actions": dict(stats.final), "final_stage": dict(stats.stage),
        "modifications": dict(stats.mods), "headers_added": dict(stats.hdr_added),
        "headers_deleted": dict(stats.hdr_deleted), "replies": dict(stats.replies),
        "expect": {s: stats.expect[s] for s, _, _ in args.expect_parsed},
        "errors": dict(stats.errors), "error_samples": stats.error_samples,
        "connections_opened": stats.connections, "negotiated": stats.negotiated,
        "client_cpu_s": round(cpu, 4),
        "client_cpu_us_per_msg": round(cpu / done * 1e6, 1) if done else None,
    }
    ok = (not stats.errors and done == args.messages
          and all(stats.expect[s] == done for s, _, _ in args.expect_parsed))
    return result, ok


def parse_socket(spec):
    if spec.startswith(("unix:", "local:")):
        return "unix", spec.split(":", 1)[1]
    if spec.startswith("inet:"):
        rest = spec[5:]
        if "@" in rest:                           # opendkim style inet:PORT@HOST
            port, host = rest.split("@", 1)
        else:
            host, _, port = rest.rpartition(":")
        return "inet", (host.strip("[]") or "127.0.0.1", int(port))
    if spec.startswith("/"):
        return "unix", spec
    raise argparse.ArgumentTypeError(f"bad --socket {spec!r}")


def build_session(args):
    addr = ipaddress.ip_address(args.client_addr)
    family = b"4" if addr.version == 4 else b"6"
    args.connect_data = cstr(args.client_name) + family + struct.pack("!H", args.client_port) + cstr(args.client_addr)
    args.connect_macros = {
        "j": args.mta_name, "{daemon_name}": "milterload", "{daemon_addr}": "127.0.0.1",
        "v": "milterload", "_": f"{args.client_name} [{args.client_addr}]",
        "{client_addr}": args.client_addr, "{client_name}": args.client_name,
        "{client_port}": str(args.client_port),
    }
    sender = args.mail_from
    args.mail_data = cstr(f"<{sender}>")
    args.mail_macros = {"{mail_addr}": sender, "{mail_host}": sender.rpartition("@")[2],
                        "{mail_mailer}": "smtp"}
    if args.auth:
        args.mail_macros.update({"{auth_type}": "PLAIN", "{auth_authen}": args.auth})
    args.rcpts = [(cstr(f"<{r}>"), {"{rcpt_addr}": r, "{rcpt_host}": r.rpartition("@")[2],
                                    "{rcpt_mailer}": "smtp"}) for r in args.rcpt or ["bob@example.net"]]
    args.expect_parsed = parse_expect(args.expect_header)
    args.qid_prefix = f"{os.getpid() & 0xFFFF:04X}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--socket", required=True, help="unix:PATH | inet:HOST:PORT | inet:PORT@HOST")
    p.add_argument("--concurrency", "-c", type=int, default=1, help="parallel connections (default 1)")
    p.add_argument("--messages", "-n", type=int, default=1000, help="total messages (default 1000)")
    p.add_argument("--eml", action="append", help="message file (repeatable)")
    p.add_argument("--dir", help="directory of message files, used in sorted order, cycled")
    p.add_argument("--sample-body-bytes", type=int, default=1500,
                   help="body size of the built-in sample when no --eml/--dir (default 1500)")
    p.add_argument("--per-message-connections", action="store_true",
                   help="open a new connection for every message (default: reuse)")
    p.add_argument("--no-abort", action="store_true",
                   help="do not send ABORT between messages on a reused connection")
    p.add_argument("--auth", metavar="USER", help="set {auth_type}/{auth_authen} macros at MAIL")
    p.add_argument("--client-addr", default="127.0.0.1", help="SMTP client IP in CONNECT")
    p.add_argument("--client-name", default="client.example.net")
    p.add_argument("--client-port", type=int, default=40000)
    p.add_argument("--helo", default="client.example.net")
    p.add_argument("--mta-name", default="mx.bench.test", help="value of the j macro")
    p.add_argument("--mail-from", default="alice@example.com")
    p.add_argument("--rcpt", action="append", help="envelope recipient (repeatable)")
    p.add_argument("--expect-header", action="append", metavar="NAME[:SUBSTR]",
                   help="count messages whose reply added header NAME (containing SUBSTR)")
    p.add_argument("--tcp-quickack", action="store_true",
                   help="inet only: ACK every read at once (TCP_QUICKACK, Linux), so a milter "
                        "that writes its EOM replies in several small writes is not held "
                        "~40 ms by Nagle + delayed ACK; off by default, as in an MTA")
    p.add_argument("--max-errors", type=int, default=100,
                   help="stop the run after this many errors (default 100)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="per-message timeout in seconds (default 60)")
    p.add_argument("--show", type=int, default=0, metavar="N",
                   help="print the modifications of the first N messages to stderr")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.messages < 1:
        p.error("--concurrency and --messages must be >= 1")
    args.socket_kind, args.socket_addr = parse_socket(args.socket)
    build_session(args)
    try:
        msgs = load_messages(args)
    except (OSError, ValueError) as e:
        p.error(str(e))
    result, ok = asyncio.run(run(args, msgs))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        lat = result["latency_ms"]
        print(f"{result['messages_completed']}/{args.messages} msgs in {result['elapsed_s']} s "
              f"= {result['msgs_per_s']} msgs/s  (c={args.concurrency}, {result['connection_mode']})")
        print(f"latency ms: p50={lat['p50']} p95={lat['p95']} p99={lat['p99']} max={lat['max']}")
        print(f"final: {result['final_actions']}  stage: {result['final_stage']}")
        print(f"modifications: {result['modifications']}  headers: {result['headers_added']}")
        for s, n in result["expect"].items():
            print(f"expect {s}: {n}/{result['messages_completed']}")
        if result["errors"]:
            print(f"errors: {result['errors']} {result['error_samples']}")
        print(f"client cpu: {result['client_cpu_us_per_msg']} us/msg")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
