"""The pymilter adapter: libmilter callbacks in, the core's outcome out.

The only module that imports Milter; the processes that run it (socket, workers, signals) are in
process/. libmilter runs one OS thread per SMTP connection and pymilter builds one object of this
class per connection, reused for every message on it; per-message state is therefore reset at
MAIL FROM. Nothing here decides policy: it builds a Transaction, runs the pipeline phase by
phase, and replays the Outcome's edits in order.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

try:
    import Milter
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "mailwarden serve needs pymilter (pip install pymilter; it builds against libmilter-dev): "
        f"{exc}"
    ) from exc

from mailwarden import metrics
from mailwarden.adapters.summary import log_outcome
from mailwarden.bootstrap import Runtime
from mailwarden.core.decisions import (
    Action,
    AddHeader,
    AddRecipient,
    ChangeHeader,
    ChangeSender,
    DeleteHeader,
    DeleteRecipient,
    Edit,
    Outcome,
    Verdict,
)
from mailwarden.core.model import Body, Connection, Envelope, Header, Message, Transaction, bracket
from mailwarden.core.pipeline import Phase

# pymilter's C extension is called `milter`; reach it through Milter so that nothing can pick up
# the `milter/` source folder (a namespace package) by mistake. The process code (process/) runs
# libmilter through this: setconn, opensocket, main.
LIBMILTER: Any = Milter.milter

LOG = logging.getLogger("mailwarden.milter")

# pymilter has no type information: give its constants types once, here.
CONTINUE: int = Milter.CONTINUE
ACCEPT: int = Milter.ACCEPT
REJECT: int = Milter.REJECT
TEMPFAIL: int = Milter.TEMPFAIL
DISCARD: int = Milter.DISCARD
NOREPLY: int = Milter.NOREPLY

# Protocol steps we never want skipped, and the reply-less steps we never want: without their
# reply the milter could not reject at MAIL FROM or at end of headers.
_UNWANTED: int = (
    Milter.P_RCPT_REJ | Milter.P_NOCONNECT | Milter.P_NOHELO | Milter.P_NOMAIL | Milter.P_NORCPT
    | Milter.P_NOHDRS | Milter.P_NOEOH | Milter.P_NOBODY | Milter.P_NR_EOH
)
P_NR_MAIL: int = Milter.P_NR_MAIL
# The attribute each reply-less step returns, by the flag that makes it reply-less.
_NR_STEPS: tuple[tuple[str, int], ...] = (
    ("_rc_conn", Milter.P_NR_CONN), ("_rc_helo", Milter.P_NR_HELO), ("_rc_mail", P_NR_MAIL),
    ("_rc_rcpt", Milter.P_NR_RCPT), ("_rc_hdr", Milter.P_NR_HDR), ("_rc_body", Milter.P_NR_BODY),
)

_RESULT: dict[Action, int] = {
    Action.CONTINUE: ACCEPT,
    Action.ACCEPT: ACCEPT,
    Action.REJECT: REJECT,
    Action.TEMPFAIL: TEMPFAIL,
    Action.DISCARD: DISCARD,
    Action.QUARANTINE: ACCEPT,
}

INTERNAL_ERROR = Verdict.tempfail("temporary failure in mail filter", dsn="4.3.0")


class Connections(Protocol):
    """Told when a connection opens and closes (the worker's tally and balance, process/)."""

    def opened(self) -> None: ...

    def closed(self) -> None: ...


class RuntimeHolder:
    """The Runtime new connections get.

    A connection keeps the runtime it started with for all its messages: the milter protocol was
    negotiated for that runtime's stages (no reply at MAIL FROM when none runs there). `swap`
    therefore takes effect from the next connection; Postfix opens one per SMTP session.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime

    def swap(self, runtime: Runtime) -> Runtime:
        """Install `runtime` for new connections; returns the one it replaces."""
        old, self.current = self.current, runtime
        return old


def _guarded(func: Callable[..., int]) -> Callable[..., int]:
    """No exception may reach libmilter: it becomes a logged tempfail (451 4.3.0)."""

    @functools.wraps(func)
    def wrapper(self: MailwardenMilter, *args: Any) -> int:
        try:
            return func(self, *args)
        except Exception:
            LOG.exception("%s: error in %s", self._qid(), func.__name__)
            return self._internal_error()

    return wrapper


def _decode(values: tuple[bytes, ...]) -> list[str]:
    return [v.decode("utf-8", "surrogateescape") for v in values]


class MailwardenMilter(Milter.Base):  # type: ignore[misc]
    """One per SMTP connection.

    libmilter calls the methods below directly (see `serve`), not through pymilter's decorators
    and bytes-decoding shims: most of them run once per header or per body chunk, and each Python
    frame there costs throughput on every message. The steps that send no reply (connect, HELO,
    RCPT, header, body; MAIL too when no stage runs at MAIL FROM) cannot refuse anything: an error
    there is remembered and the message is temp-failed at the next step that does reply.
    """

    def __init__(self, holder: RuntimeHolder, connections: Connections | None = None) -> None:
        # pymilter builds this object at the connection's first step and always calls close().
        self._connections = connections
        if connections is not None:
            connections.opened()
        metrics.connection(+1)
        self._runtime: Runtime = holder.current
        self._client_ip = ""
        self._client_port = 0
        self._client_name = ""
        self._helo = ""
        self._conn_macros: dict[str, str] = {}
        self._tx: Transaction | None = None
        self._outcome: Outcome | None = None
        self._started = 0.0
        # What each step returns when it has nothing to say: NOREPLY where negotiated.
        self._rc_conn = self._rc_helo = self._rc_mail = CONTINUE
        self._rc_rcpt = self._rc_hdr = self._rc_body = CONTINUE
        self._failed_conn = ""  # an error at connect or HELO: every message on it temp-fails
        self._failed_msg = ""  # an error at a reply-less step of this message

    def negotiate(self, opts: list[int]) -> int:
        """Ask libmilter for every step we use; no reply where none can change the outcome."""
        try:
            self._actions, offered, _, _ = opts
            unwanted = _UNWANTED
            if self._runtime.pipeline.has_phase(Phase.ENVELOPE):
                unwanted |= P_NR_MAIL
            opts[1] = p = self._protocol = offered & ~unwanted
            opts[2] = opts[3] = 0
            for attr, flag in _NR_STEPS:
                setattr(self, attr, NOREPLY if p & flag else CONTINUE)
        except Exception:
            LOG.exception("protocol negotiation failed")
            return TEMPFAIL
        return CONTINUE

    # -- connection -------------------------------------------------------------------------

    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        try:
            if isinstance(hostaddr, tuple) and hostaddr:
                self._client_ip = str(hostaddr[0])
                self._client_port = int(hostaddr[1]) if len(hostaddr) > 1 else 0
            self._client_name = hostname or ""
            # Read {daemon_name} now: at end of message it would hold cleanup's value instead.
            for macro in ("{daemon_name}", "j", "{daemon_addr}"):
                value = self.getsymval(macro)
                if value:
                    self._conn_macros[macro] = value
        except Exception:
            self._failed_conn = _failure("connect")
        return self._rc_conn

    def hello(self, helo: str) -> int:
        self._helo = helo or ""
        return self._rc_helo

    # -- envelope ---------------------------------------------------------------------------

    def envfrom(self, mailfrom: str, *params: str) -> int:
        try:
            self._reset()
            self._started = time.perf_counter()
            macros = dict(self._conn_macros)
            for macro in ("{auth_authen}", "{auth_type}", "i"):
                value = self.getsymval(macro)
                if value:
                    macros[macro] = value
            conn = Connection(self._client_ip, self._client_port, self._client_name, self._helo, macros)
            env = Envelope(bracket(mailfrom), tuple(params), (), macros.get("i", ""))
            body = Body(self._runtime.config.milter.spool_threshold)
            tx = Transaction(conn, env, Message([], body), self._runtime.direction.direction(conn))
            self._tx = tx
            self._outcome = outcome = Outcome()
            if self._failed_conn:
                self._failed_msg = self._failed_conn
            if self._rc_mail == NOREPLY:  # nothing runs here, and nothing could be said
                return NOREPLY
            if self._failed_msg:
                return self._deferred_error()
            self._runtime.pipeline.run_phase(tx, Phase.ENVELOPE, outcome)
            return self._early(outcome)
        except Exception:
            if self._rc_mail == NOREPLY:
                self._failed_msg = _failure("envfrom")
                return NOREPLY
            LOG.exception("%s: error in envfrom", self._qid())
            return self._internal_error()

    def envrcpt(self, to: str, *params: str) -> int:
        tx = self._tx
        if tx is not None:
            try:
                env = tx.envelope
                rcpts = (*env.rcpts, bracket(to))
                tx.envelope = Envelope(env.mail_from, env.mail_params, rcpts, env.queue_id)
            except Exception:
                self._failed_msg = _failure("envrcpt")
        return self._rc_rcpt

    # -- content ----------------------------------------------------------------------------

    def header(self, name: str, value: bytes) -> int:
        tx = self._tx
        if tx is not None:
            try:
                tx.message.headers.append(Header(name, value.decode("utf-8", "surrogateescape")))
            except Exception:
                self._failed_msg = _failure("header")
        return self._rc_hdr

    @_guarded
    def eoh(self) -> int:
        tx, outcome = self._tx, self._outcome
        if tx is None or outcome is None:
            return CONTINUE
        if self._failed_msg:
            return self._deferred_error()
        qid = self.getsymval("i") or tx.envelope.queue_id
        env = tx.envelope
        tx.envelope = Envelope(env.mail_from, env.mail_params, env.rcpts, qid)
        tx.received_headers = tuple(tx.message.headers)
        if not outcome.finished:
            self._runtime.pipeline.run_phase(tx, Phase.HEADERS, outcome)
        return self._early(outcome)

    def body(self, chunk: bytes) -> int:
        tx = self._tx
        if tx is not None and not self._failed_msg:
            try:
                tx.message.body.write(chunk)
            except Exception:  # a full spool disk, say: the MTA must keep the message and retry
                self._failed_msg = _failure("body")
        return self._rc_body

    @_guarded
    def eom(self) -> int:
        tx, outcome = self._tx, self._outcome
        if tx is None or outcome is None:
            return ACCEPT
        if self._failed_msg:
            return self._deferred_error()
        self._runtime.pipeline.end_of_message(tx, outcome)
        verdict = outcome.verdict
        if verdict.action in (Action.CONTINUE, Action.ACCEPT, Action.QUARANTINE):
            for edit in outcome.edits:
                self._apply(edit)
            if verdict.action is Action.QUARANTINE:
                self.quarantine(verdict.reason or "held by mailwarden")
        self._runtime.record(tx, outcome)  # DMARC reports: a queue put, never an error
        return self._finish(verdict)

    @_guarded
    def abort(self) -> int:
        self._reset()
        return CONTINUE

    @_guarded
    def close(self) -> int:
        connections, self._connections = self._connections, None
        if connections is not None:
            connections.closed()
        metrics.connection(-1)
        self._reset()
        return CONTINUE

    # -- helpers ----------------------------------------------------------------------------

    def _internal_error(self) -> int:
        try:
            self._reply(INTERNAL_ERROR)
        except Exception:
            LOG.exception("%s: setreply failed", self._qid())
        self._reset()
        return TEMPFAIL

    def _deferred_error(self) -> int:
        LOG.warning("%s: %s", self._qid(), self._failed_msg)
        return self._internal_error()

    def _early(self, outcome: Outcome) -> int:
        """At MAIL FROM or end of headers, only a reject, tempfail or discard can end the message.

        Accept and quarantine wait for end of message, where the edits can be applied.
        """
        if outcome.verdict.action in (Action.REJECT, Action.TEMPFAIL, Action.DISCARD):
            return self._finish(outcome.verdict)
        return CONTINUE

    def _finish(self, verdict: Verdict) -> int:
        self._reply(verdict)
        tx, outcome = self._tx, self._outcome
        if tx is not None and outcome is not None:
            self._log(tx, outcome)
        self._reset()
        return _RESULT[verdict.action]

    def _reply(self, verdict: Verdict) -> None:
        reply = verdict.reply
        if reply is not None and verdict.action in (Action.REJECT, Action.TEMPFAIL):
            text = reply.text.replace("\r", " ").replace("\n", " ").replace("%", "%%")
            self.setreply(reply.code, reply.dsn, text)

    def _apply(self, edit: Edit) -> None:
        match edit:
            case AddHeader(name=name, value=value, index=None):
                self.addheader(name, value)
            case AddHeader(name=name, value=value, index=index):
                self.addheader(name, value, index)
            case ChangeHeader(name=name, occurrence=occ, value=value):
                self.chgheader(name, occ, value)
            case DeleteHeader(name=name, occurrence=occ):
                self.chgheader(name, occ, "")
            case AddRecipient(address=addr, params=params):
                self.addrcpt(bracket(addr), params or None)
            case DeleteRecipient(address=addr):
                self.delrcpt(bracket(addr))
            case ChangeSender(address=addr, params=params):
                self.chgfrom(bracket(addr), params or None)

    def _log(self, tx: Transaction, outcome: Outcome) -> None:
        log_outcome(LOG, tx, outcome, time.perf_counter() - self._started)
        metrics.observe(tx, outcome)

    def _qid(self) -> str:
        tx = self._tx
        return (tx.envelope.queue_id if tx is not None else "") or "NOQUEUE"

    def _reset(self) -> None:
        if self._tx is not None:
            self._tx.message.body.close()
        self._tx = None
        self._outcome = None
        self._failed_msg = ""


def _failure(step: str) -> str:
    """The current exception as one log entry; it is logged when the message is temp-failed."""
    return f"error in {step} (message temp-failed at the next reply):\n{traceback.format_exc()}"


# How libmilter reaches each callback: straight to our methods, since pymilter's own shims add
# several Python frames per header. install() registers these; tests/support/fakemilter.py calls
# them in-process the way libmilter does.
CALLBACKS: dict[str, Callable[..., int]] = {
    "connect": Milter.connect_callback,  # builds the per-connection object if negotiate did not
    "helo": lambda ctx, host: ctx.getpriv().hello(host),
    "envfrom": lambda ctx, *b: ctx.getpriv().envfrom(*_decode(b)),
    "envrcpt": lambda ctx, *b: ctx.getpriv().envrcpt(*_decode(b)),
    "header": lambda ctx, f, v: ctx.getpriv().header(f, v),
    "eoh": lambda ctx: ctx.getpriv().eoh(),
    "body": lambda ctx, chunk: ctx.getpriv().body(chunk),
    "eom": lambda ctx: ctx.getpriv().eom(),
    "abort": lambda ctx: ctx.getpriv().abort(),
    "close": Milter.close_callback,
}
negotiate_callback: Callable[..., int] = Milter.negotiate_callback


def install(holder: RuntimeHolder, connections: Connections | None = None) -> None:
    """Point libmilter's callbacks at MailwardenMilter; the process code (process/) then opens
    the socket and runs libmilter through LIBMILTER."""
    LIBMILTER.set_exception_policy(LIBMILTER.TEMPFAIL)
    for step, callback in CALLBACKS.items():
        getattr(LIBMILTER, f"set_{step}_callback")(callback)
    LIBMILTER.register(
        "mailwarden",
        data=lambda ctx: ctx.getpriv().data(),
        unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
        negotiate=negotiate_callback,
    )
    # The one piece of global state pymilter needs: how to build a per-connection object.
    Milter.factory = lambda: MailwardenMilter(holder, connections)
