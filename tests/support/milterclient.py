"""A synchronous milter-protocol (version 6) client that plays the MTA's side, as Postfix 3.7 does.

Stdlib only. It talks to a milter over ``unix:/path`` or ``inet:PORT@HOST`` / ``inet:HOST:PORT``
(loopback hosts only: every test byte stays on 127.0.0.1 / ::1).

Typical use::

    from tests.support.milterclient import MilterClient, apply_mods

    with MilterClient.connect("unix:/tmp/x/milter.sock") as mc:
        mc.optneg()                                   # offers what Postfix 3.7 offers
        assert mc.leadspc                             # the milter asked for P_HDR_LEADSPC
        res = mc.send_message(raw, "<a@sender.test>", ["<b@rcpt.test>"], auth="user1")
        assert res.action == "accept"
        delivered = apply_mods(raw, res.mods, leadspc=mc.leadspc)

Step by step (each call returns a :class:`Reply`; a step the milter asked to skip with SMFIP_NO* is
not sent and a step it declared no-reply with SMFIP_NR_* is not awaited: both return
``Reply("continue")`` with ``sent``/``awaited`` telling which)::

    mc.optneg(actions=0x1FF, protocol=0x1FFFFF)
    mc.conn("client.test", "4", "127.0.0.1", 40000, macros={...})     # defaults mimic Postfix
    mc.helo("client.test")
    mc.mail("<a@sender.test>", "SIZE=100", macros={"{auth_authen}": "user1"})
    mc.rcpt("<b@rcpt.test>")
    mc.data()
    mc.header("Subject", b" hello")      # value bytes exactly as after the colon (str is UTF-8 encoded)
    mc.eoh()
    mc.body(b"line\\r\\n")                # split into 65535-byte chunks
    res = mc.eom()                       # res.mods: modifications received before the final reply
    mc.abort(); mc.quit()

:class:`Reply` fields: ``action`` ("continue", "accept", "reject", "tempfail", "discard",
"replycode", "skip", "shutdown", "conn_fail"), ``stage`` (the step it answered), ``code``/``dsn``/
``text`` (parsed SMFIR_REPLYCODE, e.g. "554", "5.4.0", "Error: too many hops"), ``reply`` (the whole
reply line) and ``mods`` (list of :class:`Mod`, only for eom). ``verdict`` maps a replycode to
"reject" (5xx) or "tempfail" (4xx), everything else is the action.

:class:`Mod` fields: ``op`` ("addheader", "insheader", "chgheader", "addrcpt", "addrcpt_par",
"delrcpt", "chgfrom", "quarantine", "replbody"), ``name`` (str), ``value`` (bytes, as sent; for
chgheader an empty value is a delete: ``mod.is_delete``), ``index`` (insheader index, or chgheader
occurrence, 1-based per name), ``address``, ``params`` (str), ``reason`` (quarantine), ``body``.

:func:`apply_mods` applies modifications the way Postfix does (chgheader counts visible headers per
name, case-insensitive; an absent occurrence is appended; insheader index 0 is above the MTA's own
Received header, index 1 directly below it; indices count every header above, as delivered) and
returns the message as the MTA would deliver it
(CRLF line ends). :func:`parse_message` splits raw bytes into (name, value-bytes) headers and a CRLF
body exactly as :meth:`MilterClient.send_message` sends them.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Commands, MTA -> milter.
SMFIC_ABORT, SMFIC_BODY, SMFIC_CONNECT, SMFIC_MACRO = b"A", b"B", b"C", b"D"
SMFIC_BODYEOB, SMFIC_HELO, SMFIC_HEADER, SMFIC_MAIL = b"E", b"H", b"L", b"M"
SMFIC_EOH, SMFIC_OPTNEG, SMFIC_QUIT, SMFIC_RCPT, SMFIC_DATA = b"N", b"O", b"Q", b"R", b"T"

MODIFICATIONS = {
    b"+": "addrcpt", b"-": "delrcpt", b"2": "addrcpt_par", b"b": "replbody",
    b"e": "chgfrom", b"h": "addheader", b"i": "insheader", b"m": "chgheader",
    b"q": "quarantine",
}
FINAL = {
    b"a": "accept", b"c": "continue", b"d": "discard", b"r": "reject",
    b"t": "tempfail", b"y": "replycode", b"s": "skip", b"4": "shutdown", b"f": "conn_fail",
}
SMFIR_PROGRESS = b"p"

MILTER_VERSION = 6
ACTIONS_POSTFIX = 0x1FF        # what Postfix 3.7 offers: ADDHDRS .. SETSYMLIST
PROTOCOL_POSTFIX = 0x1FFFFF    # every v6 step flag, including P_HDR_LEADSPC

P_NOCONNECT, P_NOHELO, P_NOMAIL, P_NORCPT = 0x1, 0x2, 0x4, 0x8
P_NOBODY, P_NOHDRS, P_NOEOH, P_NR_HDR = 0x10, 0x20, 0x40, 0x80
P_NOUNKNOWN, P_NODATA, P_SKIP, P_RCPT_REJ = 0x100, 0x200, 0x400, 0x800
P_NR_CONN, P_NR_HELO, P_NR_MAIL, P_NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
P_NR_DATA, P_NR_UNKN, P_NR_EOH, P_NR_BODY = 0x10000, 0x20000, 0x40000, 0x80000
P_HDR_LEADSPC = 0x100000

MACRO_STAGES = ["connect", "helo", "mail", "rcpt", "data", "eom", "eoh"]
CHUNK = 65535
MAX_PACKET = 64 * 1024 * 1024


# Unique across clients, so that a test can tell each message's log lines apart.
_QIDS = itertools.count(1)

class MilterProtocolError(Exception):
    """The milter sent something the protocol does not allow, or closed the connection."""


@dataclass(frozen=True)
class Mod:
    """One modification request received before the final reply to EOM."""

    op: str
    name: str = ""
    value: bytes = b""
    index: int = 0
    address: str = ""
    params: str = ""
    reason: str = ""
    body: bytes = b""

    @property
    def is_delete(self) -> bool:
        return self.op == "chgheader" and self.value == b""

    def __repr__(self) -> str:
        if self.op in ("addheader", "insheader", "chgheader"):
            return f"Mod({self.op}, {self.index}, {self.name!r}, {self.value!r})"
        if self.op in ("addrcpt", "addrcpt_par", "delrcpt", "chgfrom"):
            return f"Mod({self.op}, {self.address!r}, {self.params!r})"
        if self.op == "quarantine":
            return f"Mod(quarantine, {self.reason!r})"
        return f"Mod({self.op}, {len(self.body)} bytes)"


@dataclass
class Reply:
    """The milter's answer to one step."""

    action: str
    stage: str = ""
    reply: str = ""
    mods: list[Mod] = field(default_factory=list)
    sent: bool = True
    awaited: bool = True

    @property
    def code(self) -> str:
        return self.reply[:3] if self.action == "replycode" else ""

    @property
    def dsn(self) -> str:
        parts = self.reply.split(" ", 2)
        if self.action == "replycode" and len(parts) > 1 and parts[1][:1] in "245" and "." in parts[1]:
            return parts[1]
        return ""

    @property
    def text(self) -> str:
        if self.action != "replycode":
            return ""
        rest = self.reply[4:]
        if self.dsn:
            rest = rest[len(self.dsn) + 1:]
        return rest

    @property
    def verdict(self) -> str:
        if self.action == "replycode":
            return {"4": "tempfail", "5": "reject"}.get(self.reply[:1], "replycode")
        return self.action

    @property
    def decisive(self) -> bool:
        """True when the message transaction ends here (anything but continue/skip)."""
        return self.action not in ("continue", "skip")

    def header_mods(self) -> list[Mod]:
        return [m for m in self.mods if m.op in ("addheader", "insheader", "chgheader")]


def parse_socket(spec: str) -> tuple[int, object]:
    """``unix:/p``, ``local:/p``, ``/p``, ``inet:PORT@HOST``, ``inet:HOST:PORT``, ``inet6:PORT@HOST``."""
    if spec.startswith(("unix:", "local:")):
        return socket.AF_UNIX, spec.split(":", 1)[1]
    if spec.startswith("/"):
        return socket.AF_UNIX, spec
    if spec.startswith(("inet:", "inet6:")):
        rest = spec.split(":", 1)[1]
        if "@" in rest:
            port, host = rest.split("@", 1)
        else:
            host, _, port = rest.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"test traffic must stay on loopback, not {host!r}")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        return fam, (host, int(port))
    raise ValueError(f"bad milter socket spec {spec!r}")


_TEST_NETS = [ipaddress.ip_network(n) for n in
              ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


def _test_address(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return ip.is_loopback or any(ip in net for net in _TEST_NETS)


def _packet(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + cmd + data


def _b(x: str | bytes) -> bytes:
    return x if isinstance(x, bytes) else x.encode("utf-8", "surrogateescape")


def _cstr(*parts: str | bytes) -> bytes:
    return b"".join(_b(p) + b"\0" for p in parts)


def _s(x: bytes) -> str:
    return x.decode("utf-8", "surrogateescape")


@dataclass
class ParsedMessage:
    """headers: (raw name as written before the colon, value bytes after the colon with folds as
    b"\\n" + continuation); body: CRLF line ends."""

    headers: list[tuple[bytes, bytes]]
    body: bytes


def parse_message(raw: bytes) -> ParsedMessage:
    """Split a message (LF or CRLF line ends) the way Postfix hands it to a milter."""
    raw = raw.replace(b"\r\n", b"\n")
    if raw.startswith(b"From "):        # mbox separator line
        raw = raw.partition(b"\n")[2]
    lines = raw.split(b"\n")
    headers: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == b"":
            i += 1
            break
        if line[:1] in (b" ", b"\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + b"\n" + line)
        elif b":" in line and line[:1] not in (b" ", b"\t", b":"):
            n, v = line.split(b":", 1)
            headers.append((n, v))
        else:
            break                       # not a header: Postfix starts the body here
        i += 1
    rest = lines[i:]
    if rest and rest[-1] == b"":
        rest = rest[:-1]                # the final line end
    body = b"".join(line + b"\r\n" for line in rest)
    return ParsedMessage(headers, body)


class MilterClient:
    """One milter connection. Not thread-safe; use one client per thread."""

    def __init__(self, sock: socket.socket, timeout: float = 30.0) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self._buf = bytearray()
        self.version = 0
        self.actions = 0
        self.protocol = 0
        self.offered_protocol = 0
        self.symlists: dict[str, str] = {}
        self.negotiated = False
        self.connected = False
        self._open_tx = False
        self.queue_id = ""

    # ---- connection ---------------------------------------------------------------------------
    @classmethod
    def connect(cls, socket_spec: str, timeout: float = 30.0) -> MilterClient:
        fam, addr = parse_socket(socket_spec)
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(addr)  # type: ignore[arg-type]
        except BaseException:
            s.close()
            raise
        return cls(s, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> MilterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            try:
                self.quit()
            except OSError:
                pass
        self.close()

    # ---- wire ---------------------------------------------------------------------------------
    def _send(self, cmd: bytes, data: bytes = b"") -> None:
        self.sock.sendall(_packet(cmd, data))

    def _read(self) -> tuple[bytes, bytes]:
        while True:
            if len(self._buf) >= 4:
                length = int.from_bytes(self._buf[:4], "big")
                if length < 1 or length > MAX_PACKET:
                    raise MilterProtocolError(f"bad packet length {length}")
                if len(self._buf) >= 4 + length:
                    pkt = bytes(self._buf[4:4 + length])
                    del self._buf[:4 + length]
                    return pkt[:1], pkt[1:]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MilterProtocolError("connection closed by milter")
            self._buf += chunk

    def _reply(self, stage: str, allow_mods: bool = False) -> Reply:
        mods: list[Mod] = []
        while True:
            cmd, data = self._read()
            if cmd == SMFIR_PROGRESS:
                continue
            if cmd in MODIFICATIONS:
                if not allow_mods:
                    raise MilterProtocolError(f"modification {cmd!r} in reply to {stage}")
                mods.append(self._mod(cmd, data))
                continue
            if cmd in FINAL:
                text = _s(data.rstrip(b"\0")) if cmd == b"y" else ""
                return Reply(FINAL[cmd], stage, text, mods)
            raise MilterProtocolError(f"unexpected reply {cmd!r} to {stage}")

    @staticmethod
    def _mod(cmd: bytes, data: bytes) -> Mod:
        op = MODIFICATIONS[cmd]
        if cmd in (b"i", b"m"):
            (index,) = struct.unpack("!I", data[:4])
            name, _, rest = data[4:].partition(b"\0")
            return Mod(op, _s(name), rest[:-1] if rest.endswith(b"\0") else rest, index)
        if cmd == b"h":
            name, _, rest = data.partition(b"\0")
            return Mod(op, _s(name), rest[:-1] if rest.endswith(b"\0") else rest)
        if cmd in (b"+", b"-", b"2", b"e"):
            parts = data.rstrip(b"\0").split(b"\0")
            return Mod(op, address=_s(parts[0]), params=_s(b" ".join(parts[1:])))
        if cmd == b"q":
            return Mod(op, reason=_s(data.rstrip(b"\0")))
        return Mod(op, body=data)

    def _macros(self, stage_cmd: bytes, macros: Mapping[str, str] | None) -> None:
        if macros:
            self._send(SMFIC_MACRO, stage_cmd + _cstr(*[x for kv in macros.items() for x in kv]))

    def _step(self, stage: str, cmd: bytes, data: bytes, no: int, nr: int,
              macros: Mapping[str, str] | None = None) -> Reply:
        if not self.negotiated:
            raise MilterProtocolError("optneg() first")
        if self.protocol & no:
            return Reply("continue", stage, sent=False, awaited=False)
        self._macros(cmd, macros)
        self._send(cmd, data)
        if self.protocol & nr:
            return Reply("continue", stage, awaited=False)
        return self._reply(stage)

    # ---- protocol steps ------------------------------------------------------------------------
    def optneg(self, actions: int = ACTIONS_POSTFIX, protocol: int = PROTOCOL_POSTFIX,
               version: int = MILTER_VERSION) -> Reply:
        """Offer version/actions/protocol; record what the milter asked for in
        ``self.version``, ``self.actions``, ``self.protocol`` and ``self.symlists``."""
        self.offered_protocol = protocol
        self._send(SMFIC_OPTNEG, struct.pack("!III", version, actions, protocol))
        cmd, data = self._read()
        if cmd != SMFIC_OPTNEG or len(data) < 12:
            raise MilterProtocolError(f"bad OPTNEG reply {cmd!r} {data[:20]!r}")
        self.version, self.actions, self.protocol = struct.unpack("!III", data[:12])
        if self.protocol & ~protocol & 0x0FFFFFFF:
            raise MilterProtocolError(f"milter asked for unoffered protocol bits 0x{self.protocol:x}")
        if self.actions & ~actions:
            raise MilterProtocolError(f"milter asked for unoffered actions 0x{self.actions:x}")
        rest = data[12:]
        while len(rest) >= 5:
            (where,) = struct.unpack("!I", rest[:4])
            names, _, rest = rest[4:].partition(b"\0")
            key = MACRO_STAGES[where] if where < len(MACRO_STAGES) else str(where)
            self.symlists[key] = _s(names)
        self.negotiated = True
        return Reply("continue", "optneg")

    @property
    def leadspc(self) -> bool:
        """The milter asked for header values exactly as written (SMFIP_HDR_LEADSPC)."""
        return bool(self.protocol & P_HDR_LEADSPC)

    def conn(self, hostname: str = "client.test", family: str = "4", addr: str = "192.0.2.1",
             port: int = 40000, macros: Mapping[str, str] | None = None) -> Reply:
        """family: "4", "6", "L" (unix) or "U" (unknown). Default macros are Postfix's.

        The default client is a remote one: loopback is in `[policy] trusted_networks` by default,
        so a client on 127.0.0.1 sends outbound mail.

        addr must be loopback or in a documentation network (192.0.2.0/24, 198.51.100.0/24,
        203.0.113.0/24, 2001:db8::/32): it is only data, but no test should name a real host.
        """
        if family in ("4", "6") and not _test_address(addr):
            raise ValueError(f"test client addresses must be loopback or documentation nets, not {addr!r}")
        if family == "U":
            data = _cstr(hostname) + b"U"
        else:
            data = _cstr(hostname) + family.encode() + struct.pack("!H", port) + _cstr(addr)
        m = {"j": "mx.ci.test", "{daemon_name}": "mx.ci.test", "{daemon_addr}": "127.0.0.1",
             "v": "Postfix 3.7.11", "_": f"{hostname} [{addr}]"}
        m.update(macros or {})
        self.connected = True
        return self._step("connect", SMFIC_CONNECT, data, P_NOCONNECT, P_NR_CONN, m)

    def helo(self, name: str = "client.test", macros: Mapping[str, str] | None = None) -> Reply:
        return self._step("helo", SMFIC_HELO, _cstr(name), P_NOHELO, P_NR_HELO, macros)

    def _end_open_transaction(self) -> None:
        # Postfix aborts an unfinished transaction before the next MAIL (not after an EOM reply).
        if self._open_tx:
            self.abort()

    def mail(self, sender: str, *params: str, macros: Mapping[str, str] | None = None) -> Reply:
        self._end_open_transaction()
        self._open_tx = True
        self.queue_id = f"QID{next(_QIDS):05X}"
        addr = sender.strip("<>")
        m = {"{mail_addr}": addr, "{mail_host}": "[127.0.0.1]:2526", "{mail_mailer}": "smtp"}
        m.update(macros or {})
        return self._step("mail", SMFIC_MAIL, _cstr(sender, *params), P_NOMAIL, P_NR_MAIL, m)

    def rcpt(self, rcpt: str, *params: str, macros: Mapping[str, str] | None = None) -> Reply:
        m = {"{rcpt_addr}": rcpt.strip("<>"), "{rcpt_host}": "[127.0.0.1]:2526", "{rcpt_mailer}": "smtp"}
        m.update(macros or {})
        return self._step("rcpt", SMFIC_RCPT, _cstr(rcpt, *params), P_NORCPT, P_NR_RCPT, m)

    def data(self, macros: Mapping[str, str] | None = None) -> Reply:
        m = {"i": self.queue_id, **(macros or {})}
        return self._step("data", SMFIC_DATA, b"", P_NODATA, P_NR_DATA, m)

    def header(self, name: str | bytes, value: str | bytes) -> Reply:
        """value: the bytes after the colon. Without LEADSPC one leading space is removed, as
        Postfix does; with it the value is sent exactly as given."""
        v = _b(value)
        if not self.leadspc and v[:1] == b" ":
            v = v[1:]
        return self._step("header", SMFIC_HEADER, _cstr(name, v), P_NOHDRS, P_NR_HDR)

    def eoh(self, macros: Mapping[str, str] | None = None) -> Reply:
        return self._step("eoh", SMFIC_EOH, b"", P_NOEOH, P_NR_EOH, {"i": self.queue_id, **(macros or {})})

    def body(self, chunk: bytes) -> Reply:
        """Send body bytes in chunks of at most 65535; stops early on a decisive reply or SKIP."""
        res = Reply("continue", "body", sent=False, awaited=False)
        for i in range(0, len(chunk), CHUNK):
            res = self._step("body", SMFIC_BODY, chunk[i:i + CHUNK], P_NOBODY, P_NR_BODY)
            if res.decisive or res.action == "skip":
                break
        return res

    def eom(self, macros: Mapping[str, str] | None = None) -> Reply:
        if not self.negotiated:
            raise MilterProtocolError("optneg() first")
        self._macros(SMFIC_BODYEOB, {"i": self.queue_id, **(macros or {})})
        self._send(SMFIC_BODYEOB)
        self._open_tx = False
        return self._reply("eom", allow_mods=True)

    def abort(self) -> None:
        """No reply is expected to ABORT."""
        self._open_tx = False
        self._send(SMFIC_ABORT)

    def quit(self) -> None:
        self._send(SMFIC_QUIT)

    # ---- whole messages ------------------------------------------------------------------------
    def send_message(
        self,
        raw: bytes,
        mail_from: str = "<a@sender.test>",
        rcpts: Sequence[str] = ("<b@rcpt.test>",),
        *,
        mail_params: Sequence[str] = (),
        connect: Mapping[str, object] | None = None,
        helo: str = "client.test",
        macros: Mapping[str, Mapping[str, str]] | None = None,
        auth: str | None = None,
        daemon_name: str | None = None,
    ) -> Reply:
        """Run one transaction; optneg/connect/helo first if this connection has not had them.

        connect: keyword arguments for :meth:`conn` (hostname, family, addr, port, macros).
        connect, daemon_name and the connect/helo macros are only valid on the first message of a
        connection (ValueError otherwise): open a new client for another connection.
        macros: extra macros per stage, e.g. ``{"connect": {...}, "mail": {...}, "eom": {...}}``.
        auth: sets ``{auth_type}=PLAIN`` and ``{auth_authen}`` at MAIL (SASL-authenticated client).
        daemon_name: ``{daemon_name}`` at connect (e.g. "ORIGINATING").
        Returns the decisive reply (with ``.stage``) or the EOM reply with its mods. Steps after a
        decisive reply are not sent (the transaction is aborted before the next MAIL).
        """
        macros = dict(macros or {})
        if not self.negotiated:
            self.optneg()
        if self.connected and (connect or daemon_name is not None or "connect" in macros or "helo" in macros):
            raise ValueError("connect/daemon_name/helo macros apply to a new connection only; "
                             "this one already had CONNECT")
        if not self.connected:
            kw = dict(connect or {})
            cm = dict(kw.pop("macros", None) or {})  # type: ignore[call-overload]
            cm.update(macros.get("connect", {}))
            if daemon_name is not None:
                cm["{daemon_name}"] = daemon_name
            res = self.conn(macros=cm, **kw)  # type: ignore[arg-type]
            if res.decisive:
                return res
            res = self.helo(helo, macros.get("helo"))
            if res.decisive:
                return res
        mm = dict(macros.get("mail", {}))
        if auth is not None:
            mm.setdefault("{auth_type}", "PLAIN")
            mm["{auth_authen}"] = auth
        res = self.mail(mail_from, *mail_params, macros=mm)
        if res.decisive:
            return res
        accepted = 0
        last = res
        for r in rcpts:
            last = self.rcpt(r, macros=macros.get("rcpt"))
            if last.verdict in ("reject", "tempfail"):
                continue                         # only this recipient is refused
            if last.decisive:
                return last
            accepted += 1
        if not accepted:
            return last
        msg = parse_message(raw)
        res = self.data(macros.get("data"))
        if res.decisive:
            return res
        for name, value in msg.headers:
            res = self.header(name.rstrip(b" \t"), value)
            if res.decisive:
                return res
        res = self.eoh(macros.get("eoh"))
        if res.decisive:
            return res
        if msg.body:
            res = self.body(msg.body)
            if res.decisive:
                return res
        return self.eom(macros.get("eom"))


def _header_line(name: str, value: bytes, leadspc: bool) -> bytes:
    # Postfix writes "name:value" with LEADSPC and "name: value" without; folds "\n" become CRLF.
    sep = b":" if leadspc else b": "
    return _b(name) + sep + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def apply_mods(raw: bytes, mods: Iterable[Mod], *, leadspc: bool = True,
               mta_received: bytes | None = None) -> bytes:
    """The message as Postfix would deliver it after these modifications (CRLF line ends).

    raw: the message as the milter saw it (without the MTA's own Received header).
    mta_received: optional header line(s) of the MTA's own Received header. Postfix always has
    one: chgheader does not see it, while insheader indices count it and every header above it
    (index i = position i in the delivered header block; 0 is the top). Without mta_received a
    placeholder takes its place for the index arithmetic and is dropped from the output.
    Unmodified headers and the body are kept byte for byte.
    """
    msg = parse_message(raw)
    # The whole header block: (name for matching or None for the MTA's hidden header, raw bytes
    # without the final CRLF).
    block: list[tuple[str | None, bytes]] = [(None, b"")]
    if mta_received:
        block[0] = (None, mta_received.replace(b"\r\n", b"\n").rstrip(b"\n").replace(b"\n", b"\r\n"))
    block += [(_s(n).rstrip(" \t"), n + b":" + v.replace(b"\n", b"\r\n")) for n, v in msg.headers]
    body = msg.body
    replaced = False
    for m in mods:
        if m.op == "addheader":
            block.append((m.name, _header_line(m.name, m.value, leadspc)))
        elif m.op == "insheader":
            block.insert(min(max(m.index, 0), len(block)), (m.name, _header_line(m.name, m.value, leadspc)))
        elif m.op == "chgheader":
            lname = m.name.lower()
            pos = [i for i, (n, _) in enumerate(block) if n is not None and n.lower() == lname]
            occ = m.index if m.index > 0 else 1
            if occ <= len(pos):
                if m.is_delete:
                    del block[pos[occ - 1]]
                else:
                    block[pos[occ - 1]] = (m.name, _header_line(m.name, m.value, leadspc))
            elif not m.is_delete:
                block.append((m.name, _header_line(m.name, m.value, leadspc)))
        elif m.op == "replbody":
            # The new body may come in several packets: the first replaces, the rest append.
            body = body + m.body if replaced else m.body
            replaced = True
    lines = [line for n, line in block if n is not None or mta_received]
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


def header_block(raw: bytes) -> list[tuple[str, bytes]]:
    """(name, value bytes) pairs of a message, for assertions."""
    return [(_s(n).rstrip(" \t"), v) for n, v in parse_message(raw).headers]
