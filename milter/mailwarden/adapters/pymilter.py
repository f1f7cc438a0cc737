"""The pymilter adapter: libmilter callbacks in, the core's outcome out.

The only module that imports Milter. libmilter runs one OS thread per SMTP connection and pymilter
builds one object of this class per connection, reused for every message on it; per-message state
is therefore reset at MAIL FROM. Nothing here decides policy: it builds a Transaction, runs the
pipeline phase by phase, and replays the Outcome's edits in order.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import logging
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

try:
    import Milter
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "mailwarden serve needs pymilter (pip install pymilter; it builds against libmilter-dev): "
        f"{exc}"
    ) from exc

from mailwarden.adapters.summary import summary_line
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
from mailwarden.core.model import Body, Connection, Envelope, Header, Message, Transaction
from mailwarden.core.pipeline import Phase

# pymilter's C extension is called `milter`; reach it through Milter so that nothing here can pick
# up the `milter/` source folder (a namespace package) by mistake.
_milter_ext: Any = Milter.milter

LOG = logging.getLogger("mailwarden.milter")

_F = TypeVar("_F", bound=Callable[..., int])
# pymilter has no type information: give its constants and decorators types once, here.
CONTINUE: int = Milter.CONTINUE
ACCEPT: int = Milter.ACCEPT
REJECT: int = Milter.REJECT
TEMPFAIL: int = Milter.TEMPFAIL
DISCARD: int = Milter.DISCARD
noreply: Callable[[_F], _F] = Milter.noreply

_RESULT: dict[Action, int] = {
    Action.CONTINUE: ACCEPT,
    Action.ACCEPT: ACCEPT,
    Action.REJECT: REJECT,
    Action.TEMPFAIL: TEMPFAIL,
    Action.DISCARD: DISCARD,
    Action.QUARANTINE: ACCEPT,
}

INTERNAL_ERROR = Verdict.tempfail("temporary failure in mail filter", dsn="4.3.0")


class RuntimeHolder:
    """The current Runtime; a reload swaps `current`, and each message keeps the one it started with."""

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime


def _guarded(func: Callable[..., int]) -> Callable[..., int]:
    """No exception may reach libmilter: it becomes a logged tempfail (451 4.3.0)."""

    @functools.wraps(func)
    def wrapper(self: MailwardenMilter, *args: Any) -> int:
        try:
            return func(self, *args)
        except Exception:
            LOG.exception("%s: error in %s", self._qid(), func.__name__)
            try:
                self._reply(INTERNAL_ERROR)
            except Exception:
                LOG.exception("%s: setreply failed", self._qid())
            self._reset()
            return TEMPFAIL

    return wrapper


@Milter.header_leading_space
class MailwardenMilter(Milter.Base):  # type: ignore[misc]
    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder
        self._runtime: Runtime = holder.current
        self._client_ip = ""
        self._client_port = 0
        self._client_name = ""
        self._helo = ""
        self._conn_macros: dict[str, str] = {}
        self._tx: Transaction | None = None
        self._outcome: Outcome | None = None
        self._started = 0.0

    # -- connection -------------------------------------------------------------------------

    @noreply
    @_guarded
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        if isinstance(hostaddr, tuple) and hostaddr:
            self._client_ip = str(hostaddr[0])
            self._client_port = int(hostaddr[1]) if len(hostaddr) > 1 else 0
        self._client_name = hostname or ""
        # Read {daemon_name} now: at end of message it would hold cleanup's value instead.
        for macro in ("{daemon_name}", "j", "{daemon_addr}"):
            value = self.getsymval(macro)
            if value:
                self._conn_macros[macro] = value
        return CONTINUE

    @noreply
    @_guarded
    def hello(self, helo: str) -> int:
        self._helo = helo or ""
        return CONTINUE

    # -- envelope ---------------------------------------------------------------------------

    @_guarded
    def envfrom(self, mailfrom: str, *params: str) -> int:
        self._reset()
        self._started = time.perf_counter()
        self._runtime = self._holder.current
        macros = dict(self._conn_macros)
        for macro in ("{auth_authen}", "{auth_type}", "i"):
            value = self.getsymval(macro)
            if value:
                macros[macro] = value
        conn = Connection(self._client_ip, self._client_port, self._client_name, self._helo, macros)
        env = Envelope(_bracket(mailfrom), tuple(params), (), macros.get("i", ""))
        body = Body(self._runtime.config.milter.spool_threshold)
        tx = Transaction(conn, env, Message([], body), self._runtime.direction.direction(conn))
        self._tx = tx
        self._outcome = outcome = Outcome()
        self._runtime.pipeline.run_phase(tx, Phase.ENVELOPE, outcome)
        return self._early(outcome)

    @noreply
    @_guarded
    def envrcpt(self, to: str, *params: str) -> int:
        tx = self._tx
        if tx is not None:
            env = tx.envelope
            tx.envelope = Envelope(env.mail_from, env.mail_params, (*env.rcpts, _bracket(to)), env.queue_id)
        return CONTINUE

    # -- content ----------------------------------------------------------------------------

    @noreply
    @_guarded
    def header(self, name: str, value: str) -> int:
        if self._tx is not None:
            self._tx.message.headers.append(Header(name, value))
        return CONTINUE

    @_guarded
    def eoh(self) -> int:
        tx, outcome = self._tx, self._outcome
        if tx is None or outcome is None:
            return CONTINUE
        qid = self.getsymval("i") or tx.envelope.queue_id
        env = tx.envelope
        tx.envelope = Envelope(env.mail_from, env.mail_params, env.rcpts, qid)
        tx.received_headers = tuple(tx.message.headers)
        if not outcome.finished:
            self._runtime.pipeline.run_phase(tx, Phase.HEADERS, outcome)
        return self._early(outcome)

    @noreply
    @_guarded
    def body(self, chunk: bytes) -> int:
        if self._tx is not None:
            self._tx.message.body.write(chunk)
        return CONTINUE

    @_guarded
    def eom(self) -> int:
        tx, outcome = self._tx, self._outcome
        if tx is None or outcome is None:
            return ACCEPT
        if not outcome.finished:
            self._runtime.pipeline.run_phase(tx, Phase.MESSAGE, outcome)
        verdict = outcome.verdict
        if verdict.action in (Action.CONTINUE, Action.ACCEPT, Action.QUARANTINE):
            unwritable = [e for e in outcome.edits if not _writable(e)]
            if unwritable:
                # pymilter can only write UTF-8; refuse rather than deliver a half-edited message.
                outcome.errors.append(f"cannot write non-UTF-8 header value: {unwritable[0]}")
                verdict = outcome.verdict = Verdict.tempfail("cannot write non-UTF-8 header value")
            else:
                for edit in outcome.edits:
                    self._apply(edit)
                if verdict.action is Action.QUARANTINE:
                    self.quarantine(verdict.reason or "held by mailwarden")
        return self._finish(verdict)

    @_guarded
    def abort(self) -> int:
        self._reset()
        return CONTINUE

    @_guarded
    def close(self) -> int:
        self._reset()
        return CONTINUE

    # -- helpers ----------------------------------------------------------------------------

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
                self.addrcpt(_bracket(addr), params or None)
            case DeleteRecipient(address=addr):
                self.delrcpt(_bracket(addr))
            case ChangeSender(address=addr, params=params):
                self.chgfrom(_bracket(addr), params or None)

    def _log(self, tx: Transaction, outcome: Outcome) -> None:
        if LOG.isEnabledFor(logging.INFO):
            LOG.info("%s", summary_line(tx, outcome, time.perf_counter() - self._started))
        for line in outcome.log:
            LOG.info("%s", line)
        for error in outcome.errors:
            LOG.warning("%s: %s", self._qid(), error)
        if LOG.isEnabledFor(logging.DEBUG):
            for note in outcome.notes:
                LOG.debug("%s: %s", self._qid(), note)

    def _qid(self) -> str:
        tx = self._tx
        return (tx.envelope.queue_id if tx is not None else "") or "NOQUEUE"

    def _reset(self) -> None:
        if self._tx is not None:
            self._tx.message.body.close()
        self._tx = None
        self._outcome = None


def _bracket(addr: str) -> str:
    """Envelope addresses as Postfix gives them over SMTP: in angle brackets (sendmail gives none)."""
    addr = addr.strip()
    return addr if addr.startswith("<") else f"<{addr}>"


def _writable(edit: Edit) -> bool:
    value = getattr(edit, "value", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _socket_hooks(spec: str, mode: int, group: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(fix, cleanup): set the socket's mode and group once created; remove it at the end."""
    path = _unix_path(spec)
    if path is None:
        return (lambda: None), (lambda: None)
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            LOG.warning("socket group %r does not exist; leaving the socket's group as is", group)

    def fix() -> None:
        try:
            os.chmod(path, mode)
            if gid >= 0:
                os.chown(path, -1, gid)
        except OSError as exc:
            LOG.error("cannot set permissions on %s: %s", path, exc)

    def cleanup() -> None:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except OSError:
            pass

    return fix, cleanup


def _unix_path(spec: str) -> str | None:
    for prefix in ("unix:", "local:"):
        if spec.startswith(prefix):
            return spec[len(prefix):]
    return spec if spec.startswith("/") else None


def serve(holder: RuntimeHolder, socket_spec: str) -> None:
    """Run libmilter until SIGTERM/SIGINT, then remove the socket file."""
    config = holder.current.config.milter
    path = _unix_path(socket_spec)
    if path is not None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # The one piece of global state pymilter needs: how to build a per-connection object.
    Milter.factory = lambda: MailwardenMilter(holder)
    _milter_ext.set_exception_policy(_milter_ext.TEMPFAIL)
    _milter_ext.set_connect_callback(Milter.connect_callback)
    _milter_ext.set_helo_callback(lambda ctx, host: ctx.getpriv().hello(host))
    _milter_ext.set_envfrom_callback(lambda ctx, *b: ctx.getpriv().envfrom_bytes(*b))
    _milter_ext.set_envrcpt_callback(lambda ctx, *b: ctx.getpriv().envrcpt_bytes(*b))
    _milter_ext.set_header_callback(lambda ctx, f, v: ctx.getpriv().header_bytes(f, v))
    _milter_ext.set_eoh_callback(lambda ctx: ctx.getpriv().eoh())
    _milter_ext.set_body_callback(lambda ctx, chunk: ctx.getpriv().body(chunk))
    _milter_ext.set_eom_callback(lambda ctx: ctx.getpriv().eom())
    _milter_ext.set_abort_callback(lambda ctx: ctx.getpriv().abort())
    _milter_ext.set_close_callback(Milter.close_callback)
    _milter_ext.setconn(socket_spec)
    _milter_ext.settimeout(config.timeout)
    _milter_ext.register(
        "mailwarden",
        data=lambda ctx: ctx.getpriv().data(),
        unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
        negotiate=Milter.negotiate_callback,
    )
    fix, cleanup = _socket_hooks(socket_spec, int(config.socket_mode, 8), config.socket_group)
    # Create the socket before smfi_main so its permissions are right before Postfix connects.
    old_umask = os.umask(0o177)
    try:
        _milter_ext.opensocket(True)
    finally:
        os.umask(old_umask)
    fix()
    stop = threading.Event()
    _stop_promptly(socket_spec, stop)
    LOG.info("listening on %s", socket_spec)
    try:
        _milter_ext.main()
    finally:
        stop.set()
        cleanup()
        LOG.info("stopped")


def _stop_promptly(socket_spec: str, stopped: threading.Event) -> None:
    """Stop within a moment of SIGTERM/SIGINT instead of libmilter's ~5 s.

    libmilter's own signal thread stops the listener, which notices only when its poll times
    out. This thread competes for the same signals; when it gets one, it asks libmilter to stop
    and connects once to the socket so the listener wakes up at once.
    """
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)

    def wait() -> None:
        signo = signal.sigwait(signals)
        if stopped.is_set():
            return
        LOG.info("stopping")
        # Hand the signal on to libmilter's own signal thread, which is the one that stops it.
        os.kill(os.getpid(), signo)
        time.sleep(0.1)
        _wake(socket_spec)

    threading.Thread(target=wait, name="signals", daemon=True).start()


def _wake(socket_spec: str) -> None:
    """Connect once to our own socket, so libmilter's listener looks at its stop flag now."""
    path = _unix_path(socket_spec)
    family, address = (socket.AF_UNIX, path) if path is not None else _inet_address(socket_spec)
    if address is None:
        return
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        sock.connect(address)


def _inet_address(spec: str) -> tuple[socket.AddressFamily, tuple[str, int] | None]:
    kind, _, rest = spec.partition(":")
    port, _, host = rest.partition("@")
    family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
    if kind not in ("inet", "inet6") or not port.isdigit():
        return family, None
    if not host or host in ("0.0.0.0", "::", "*"):
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    return family, (host, int(port))

