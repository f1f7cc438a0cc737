"""libmilter played in-process: the adapter's callbacks driven without a socket, in microseconds.

``FakeSession(runtime)`` builds the adapter's per-connection object the way libmilter does
(negotiate with what Postfix offers), then ``send_message(raw, ...)`` calls the very callbacks
``install()`` registers with libmilter (``pymilter.CALLBACKS``), in libmilter's order, skipping
the steps negotiated away. It answers with the socket client's ``Reply`` and ``Mod`` values
(tests/support/milterclient.py), so a test can move between the two, and ``apply_mods`` works on
both. What libmilter itself does (the wire, reply codes on the wire, NOREPLY bookkeeping) is not
here: tests/adapter/test_callbacks.py checks that the two agree on the same messages.

The one test double beside DNS, standing in for libmilter's C context (``milter.milterContext``).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import Milter
from tests.support.milterclient import (
    ACTIONS_POSTFIX,
    CHUNK,
    P_NOBODY,
    P_NOEOH,
    P_NOHDRS,
    P_NR_BODY,
    P_NR_CONN,
    P_NR_EOH,
    P_NR_HDR,
    P_NR_HELO,
    P_NR_MAIL,
    P_NR_RCPT,
    PROTOCOL_POSTFIX,
    Mod,
    Reply,
    parse_message,
)

from mailwarden.adapters.pymilter import CALLBACKS, MailwardenMilter, RuntimeHolder
from mailwarden.bootstrap import Runtime

_ACTIONS = {Milter.ACCEPT: "accept", Milter.REJECT: "reject", Milter.DISCARD: "discard",
            Milter.TEMPFAIL: "tempfail", Milter.CONTINUE: "continue", Milter.SKIP: "skip"}


class FakeContext:
    """What pymilter's Milter.Base calls on libmilter's context: macros in, replies and edits out."""

    def __init__(self) -> None:
        self.priv: Any = None
        self.macros: dict[str, str] = {}
        self.reply = ""
        self.mods: list[Mod] = []

    def setpriv(self, priv: Any) -> None:
        self.priv = priv

    def getpriv(self) -> Any:
        return self.priv

    def getsymval(self, name: str) -> str | None:
        return self.macros.get(name)

    def setreply(self, code: str, dsn: str | None, text: str | None, *more: str) -> None:
        # libmilter sends "code dsn text", the text's doubled "%%" read back as "%".
        self.reply = " ".join(p for p in (code, dsn, (text or "").replace("%%", "%")) if p)

    def addheader(self, name: str, value: str, index: int = -1) -> None:
        op = "addheader" if index < 0 else "insheader"
        self.mods.append(Mod(op, name, value.encode(), max(index, 0)))

    def chgheader(self, name: str, index: int, value: str) -> None:
        self.mods.append(Mod("chgheader", name, (value or "").encode(), index))

    def addrcpt(self, rcpt: str, params: str | None = None) -> None:
        self.mods.append(Mod("addrcpt_par" if params else "addrcpt", address=rcpt, params=params or ""))

    def delrcpt(self, rcpt: str) -> None:
        self.mods.append(Mod("delrcpt", address=rcpt))

    def chgfrom(self, sender: str, params: str | None = None) -> None:
        self.mods.append(Mod("chgfrom", address=sender, params=params or ""))

    def quarantine(self, reason: str) -> None:
        self.mods.append(Mod("quarantine", reason=reason))


class FakeSession:
    """One connection, as libmilter would run it for Postfix."""

    def __init__(self, runtime: Runtime, *, actions: int = ACTIONS_POSTFIX,
                 protocol: int = PROTOCOL_POSTFIX) -> None:
        self.ctx = FakeContext()
        self.milter = MailwardenMilter(RuntimeHolder(runtime))
        self.milter._setctx(self.ctx)
        opts = [actions, protocol, 0, 0]
        assert self.milter.negotiate(opts) == Milter.CONTINUE
        self.actions, self.protocol = opts[0], opts[1]
        self.connected = False
        self.in_transaction = False

    def _call(self, step: str, *args: Any) -> int:
        return int(CALLBACKS[step](self.ctx, *args))

    def _answer(self, step: str, rc: int, no_reply: int = 0) -> Reply | None:
        """The decisive Reply of a step, or None to go on."""
        if self.protocol & no_reply or rc in (Milter.CONTINUE, Milter.NOREPLY):
            return None
        action = _ACTIONS[rc]
        if action in ("reject", "tempfail") and self.ctx.reply:
            return Reply("replycode", step, self.ctx.reply)
        return Reply(action, step)

    def send_message(
        self, raw: bytes, mail_from: str = "<a@sender.test>", rcpts: Sequence[str] = ("<b@rcpt.test>",),
        *, client: tuple[str, str, int] = ("client.test", "192.0.2.1", 40000), helo: str = "client.test",
        connect_macros: Mapping[str, str] | None = None, mail_macros: Mapping[str, str] | None = None,
        auth: str | None = None, daemon_name: str | None = None, queue_id: str = "QIDFAKE",
    ) -> Reply:
        """Run one transaction (connect and HELO first on a new session), as MilterClient does."""
        ctx = self.ctx
        if not self.connected:
            self.connected = True
            ctx.macros = {"j": "mx.ci.test", "{daemon_name}": daemon_name or "smtpd",
                          **(connect_macros or {})}
            name, ip, port = client
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            for step, rc, nr in (("connect", self._call("connect", name, family, (ip, port)), P_NR_CONN),
                                 ("helo", self._call("helo", helo), P_NR_HELO)):
                if (reply := self._answer(step, rc, nr)) is not None:
                    return reply
        if self.in_transaction:
            self._call("abort")
        self.in_transaction = True
        ctx.reply, ctx.mods = "", []
        ctx.macros = {k: v for k, v in ctx.macros.items() if k not in ("i", "{auth_authen}", "{auth_type}")}
        ctx.macros.update(mail_macros or {})
        if auth is not None:
            ctx.macros.update({"{auth_type}": "PLAIN", "{auth_authen}": auth})
        if (reply := self._answer("mail", self._call("envfrom", mail_from.encode()), P_NR_MAIL)):
            return reply
        for rcpt in rcpts:
            if (reply := self._answer("rcpt", self._call("envrcpt", rcpt.encode()), P_NR_RCPT)):
                return reply
        ctx.macros["i"] = queue_id
        msg = parse_message(raw)
        if not self.protocol & P_NOHDRS:
            for hname, value in msg.headers:
                rc = self._call("header", hname.rstrip(b" \t").decode("utf-8", "surrogateescape"), value)
                if (reply := self._answer("header", rc, P_NR_HDR)):
                    return reply
        if not self.protocol & P_NOEOH and (reply := self._answer("eoh", self._call("eoh"), P_NR_EOH)):
            return reply
        if not self.protocol & P_NOBODY:
            for start in range(0, len(msg.body), CHUNK):
                rc = self._call("body", msg.body[start:start + CHUNK])
                if (reply := self._answer("body", rc, P_NR_BODY)):
                    return reply
        rc = self._call("eom")
        self.in_transaction = False
        reply = self._answer("eom", rc) or Reply(_ACTIONS[rc], "eom")
        reply.mods = list(ctx.mods)
        return reply

    def close(self) -> None:
        self._call("close")
