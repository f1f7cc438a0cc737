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
import sys
import threading
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
# Over inet: DATA is answered too, although nothing is decided there: at DATA Postfix's smtpd
# hands the milter connection to cleanup, and (Nagle on in Postfix) cleanup's first write waited
# for our delayed ACK of smtpd's last, reply-less one, about 40 ms per message. The reply carries
# that ACK at once (bench/findings.md, "inet: sockets and Postfix"). Over a unix socket there is
# no ACK to wait for, and the round trip would only cost (5-10% of throughput in milterload).
ANSWER_DATA: int = Milter.P_NODATA | Milter.P_NR_DATA
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
MALFORMED = Verdict.reject("550", "5.6.0", "malformed message: a header field name is not UTF-8")


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


# pymilter builds the connect hostname, the HELO name and header names as strict UTF-8 `str` in C,
# before any of our code runs; bytes that are not UTF-8 raise there, where pymilter prints the
# error and answers for us. Its answer is CONTINUE (see `install`): a TEMPFAIL at a step the MTA
# expects no reply to desynchronises the protocol, and the MTA then waits for EOM's reply until it
# times out. The error still reaches us: PyErr_Print calls sys.excepthook on the connection's
# own Python thread state (pymilter keeps one per connection and switches to it for every
# callback, whichever libmilter thread runs it), so a threading.local, `_connection.milter`, is
# that connection's object, which keeps the bytes (see MailwardenMilter.undecodable).
_connection = threading.local()


def _c_level_error(previous: Callable[..., Any]) -> Callable[..., Any]:
    """sys.excepthook: an argument pymilter could not decode goes to its connection's object."""

    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        milter = getattr(_connection, "milter", None)
        if milter is None:
            previous(kind, exc, tb)
        elif isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
            milter.undecodable(exc.object)
        else:  # pymilter answered CONTINUE for a step we never saw: the message must not pass
            milter.lost_step(f"{kind.__name__}: {exc}")

    return hook


def _milter(ctx: Any) -> MailwardenMilter:
    """The connection's object, made now if the MTA skipped the steps that make it."""
    milter: MailwardenMilter | None = ctx.getpriv()
    if milter is None:
        milter = Milter.factory()
        milter._setctx(ctx)
    return milter


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class MailwardenMilter(Milter.Base):  # type: ignore[misc]
    """One per SMTP connection.

    libmilter calls the methods below directly (see `serve`), not through pymilter's decorators
    and bytes-decoding shims: most of them run once per header or per body chunk, and each Python
    frame there costs throughput on every message. The steps that send no reply (connect, HELO,
    RCPT, header, body; MAIL too when no stage runs at MAIL FROM) cannot refuse anything: an error
    there is remembered and the message is temp-failed at the next step that does reply.
    """

    def __init__(self, holder: RuntimeHolder, connections: Connections | None = None,
                 unwanted: int = _UNWANTED) -> None:
        # pymilter builds this object at the connection's first step and always calls close().
        self._unwanted = unwanted
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
        self._rejected_msg = ""  # a message no retry can fix (a header name that is not UTF-8)
        self._connected = False
        self._rcpts: list[str] = []  # RCPT appends here: a tuple rebuilt per RCPT is quadratic
        _connection.milter = self

    def negotiate(self, opts: list[int]) -> int:
        """Ask libmilter for every step we use; no reply where none can change the outcome."""
        try:
            self._actions, offered, _, _ = opts
            unwanted = self._unwanted
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
            self._connect_macros()
        except Exception:
            self._failed_conn = _failure("connect")
        return self._rc_conn

    def _connect_macros(self) -> None:
        self._connected = True
        # Read {daemon_name} now: at end of message it would hold cleanup's value instead.
        for macro in ("{daemon_name}", "j", "{daemon_addr}"):
            value = self._symval(macro)
            if value:
                self._conn_macros[macro] = value

    def hello(self, helo: str) -> int:
        self._helo = helo or ""
        return self._rc_helo

    def undecodable(self, raw: bytes) -> None:
        """pymilter could not pass `raw` to us as UTF-8 (see `_c_level_error`); the step it
        belonged to follows from where the connection is.

        Before CONNECT it is the client name: kept as bytes, the address taken from Postfix's
        `_` macro ("name [address]"). Between CONNECT and MAIL it is the HELO name, kept as
        bytes (surrogate escapes), as a header value is. In a message it is a header name: RFC 5322
        allows only printable ASCII there and Postfix itself never sends one (it starts the body
        at such a line), and the header's value is lost with it, so the message is rejected:
        a retry would fail the same way.
        """
        text = _text(raw)
        if not self._connected:
            self._client_name = text
            _, _, bracketed = (self._symval("_") or "").rpartition("[")
            self._client_ip = bracketed.rstrip("]").strip()
            if not self._client_ip:
                self._failed_conn = f"client name {text!r} is not UTF-8 and its address is unknown"
            self._connect_macros()
        elif self._tx is None:
            self._helo = text
        elif not self._rejected_msg:
            self._rejected_msg = f"header name {text!r} is not UTF-8"

    def lost_step(self, error: str) -> None:
        """pymilter failed a step before reaching us: whatever message is open must not pass."""
        if self._tx is None:
            self._failed_conn = f"a step failed before reaching mailwarden: {error}"
        else:
            self._failed_msg = f"a step failed before reaching mailwarden: {error}"

    def _symval(self, macro: str) -> str | None:
        """A macro's value; one that is not UTF-8 as bytes in surrogate escapes."""
        try:
            value: str | None = self.getsymval(macro)
        except UnicodeDecodeError as exc:
            return _text(exc.object) if isinstance(exc.object, bytes) else None
        return value

    # -- envelope ---------------------------------------------------------------------------

    def envfrom(self, mailfrom: str, *params: str) -> int:
        try:
            self._reset()
            self._started = time.perf_counter()
            macros = dict(self._conn_macros)
            for macro in ("{auth_authen}", "{auth_type}", "i"):
                value = self._symval(macro)
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
        if self._tx is not None:
            self._rcpts.append(bracket(to))
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
        if self._failed_msg or self._rejected_msg:
            return self._deferred_error()
        self._complete_envelope(tx)
        tx.received_headers = tuple(tx.message.headers)
        if not outcome.finished:
            self._runtime.pipeline.run_phase(tx, Phase.HEADERS, outcome)
        return self._early(outcome)

    def body(self, chunk: bytes) -> int:
        tx = self._tx
        if tx is not None and not self._failed_msg:
            try:
                tx.message.body.write(chunk)
            except OSError as exc:  # a full or missing spool: the MTA must keep the message and retry
                self._failed_msg = f"cannot spool the body, message temp-failed: {exc}"
            except Exception:
                self._failed_msg = _failure("body")
        return self._rc_body

    @_guarded
    def eom(self) -> int:
        tx, outcome = self._tx, self._outcome
        if tx is None or outcome is None:
            return ACCEPT
        if self._failed_msg or self._rejected_msg:
            return self._deferred_error()
        self._complete_envelope(tx)
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
        if getattr(_connection, "milter", None) is self:
            _connection.milter = None
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
        if self._rejected_msg:
            LOG.warning("%s: rejected: %s", self._qid(), self._rejected_msg)
            return self._finish(MALFORMED)
        LOG.warning("%s: %s", self._qid(), self._failed_msg)
        return self._internal_error()

    def _complete_envelope(self, tx: Transaction) -> None:
        """The recipients gathered so far and the queue id (known from DATA on) into the envelope."""
        env = tx.envelope
        qid = self._symval("i") or env.queue_id
        rcpts = tuple(self._rcpts)
        if rcpts != env.rcpts or qid != env.queue_id:
            tx.envelope = Envelope(env.mail_from, env.mail_params, rcpts, qid)

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
        self._rejected_msg = ""
        self._rcpts = []


def _failure(step: str) -> str:
    """The current exception as one log entry; it is logged when the message is temp-failed."""
    return f"error in {step} (message temp-failed at the next reply):\n{traceback.format_exc()}"


# How libmilter reaches each callback: straight to our methods, since pymilter's own shims add
# several Python frames per header. install() registers these; tests/support/fakemilter.py calls
# them in-process the way libmilter does.
CALLBACKS: dict[str, Callable[..., int]] = {
    "connect": Milter.connect_callback,  # builds the per-connection object if negotiate did not
    # _milter(ctx) wherever a step can come before the object exists (see _milter); header and
    # body, the hot paths, only ever follow MAIL.
    "helo": lambda ctx, host: _milter(ctx).hello(host),
    "envfrom": lambda ctx, *b: _milter(ctx).envfrom(*_decode(b)),
    "envrcpt": lambda ctx, *b: _milter(ctx).envrcpt(*_decode(b)),
    "header": lambda ctx, f, v: ctx.getpriv().header(f, v),
    "eoh": lambda ctx: _milter(ctx).eoh(),
    "body": lambda ctx, chunk: ctx.getpriv().body(chunk),
    "eom": lambda ctx: _milter(ctx).eom(),
    "abort": lambda ctx: _milter(ctx).abort(),
    "close": Milter.close_callback,
}
negotiate_callback: Callable[..., int] = Milter.negotiate_callback


def install(holder: RuntimeHolder, connections: Connections | None = None, inet: bool = False) -> None:
    """Point libmilter's callbacks at MailwardenMilter; the process code (process/) then opens
    the socket and runs libmilter through LIBMILTER. `inet`: the socket is TCP (DATA answered)."""
    # An exception in pymilter's C code (an argument it cannot decode) reaches us through
    # sys.excepthook; pymilter's own answer must keep the protocol in step (see _connection).
    LIBMILTER.set_exception_policy(LIBMILTER.CONTINUE)
    sys.excepthook = _c_level_error(sys.excepthook)
    for step, callback in CALLBACKS.items():
        getattr(LIBMILTER, f"set_{step}_callback")(callback)
    LIBMILTER.register(
        "mailwarden",
        data=lambda ctx: _milter(ctx).data(),
        unknown=lambda ctx, cmd: _milter(ctx).unknown(cmd),
        negotiate=negotiate_callback,
    )
    # The one piece of global state pymilter needs: how to build a per-connection object.
    unwanted = _UNWANTED | ANSWER_DATA if inet else _UNWANTED
    Milter.factory = lambda: MailwardenMilter(holder, connections, unwanted)
