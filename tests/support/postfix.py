"""A private Postfix 3.7 instance for end-to-end tests, and a `mailwarden serve` subprocess.

Everything listens on 127.0.0.1 only. Needs root (Postfix's master runs as root, daemons as
user postfix) and Debian's postfix package. Fixtures in tests/conftest.py wrap these classes:

``PostfixInstance(milter="unix:/path")`` writes main.cf/master.cf into a temp dir and
``start()``s it (about 1 s). Listeners (``inst.ports[...]``; also ``.inbound`` etc.):

- ``"inbound"``: plain smtpd, like an MX; milter = ``inst.milter`` (smtpd_milters).
- ``"submission"``: SASL required (fake Dovecot auth: users in ``inst.users``, default
  ``{"user1@sender.test": "secret"}``), ``milter_macro_daemon_name=ORIGINATING``.
- ``"originating"``: no auth, ``milter_macro_daemon_name=ORIGINATING``.
- ``"alt"``: plain smtpd whose milter is ``inst.alt_milter`` (``unix:BASE/milter/alt.sock``), so a
  test can start/stop its own mailwarden there without touching the shared one.

Every listener relays everything to ``inst.sink`` (an in-process SMTP server announcing 8BITMIME
and SMTPUTF8) which records each delivery: ``Delivery(mail_from, mail_params, rcpts, data)``, data
being the exact bytes of DATA after dot-unstuffing (CRLF line ends, Postfix's own Received first).

Helpers: ``submit(port, raw, mail_from, rcpts, auth=None) -> SubmitResult(code, text, stage)``
(never raises for SMTP errors: ``stage`` says where it ended, "data" when the message was
accepted or refused at end of data), ``wait_delivery(rcpt=None, timeout=10)``,
``assert_no_delivery(rcpt, wait=0.5)``, ``queue()`` / ``hold_queue()`` (postqueue -j),
``maillog()`` / ``wait_log(substring)``, ``postconf(**settings)`` (edit main.cf + reload),
``with inst.settings(**main_cf): ...`` (temporary change, restored afterwards).

``MailwardenProcess(socket_path, config=TOML_TEXT, zone_text=...)`` runs
``python -m mailwarden serve --socket unix:PATH --config FILE --zone FILE`` (with ``--user root``
when the tests run as root, unless ``user=`` says otherwise (None: the config decides); always with a zone
file, empty by default, so no test ever uses live DNS; with ``script=PATH`` it runs
``python PATH --socket ... --config ...`` instead, e.g. tests/support/failing_serve.py, and puts
the zone into the config's [dns] section), waits until the socket answers an OPTNEG,
and ``stop()``s with SIGTERM (SIGKILL after a few seconds). ``.log()`` gives its output.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.milterclient import MilterClient

POSTFIX = "/usr/sbin/postfix"
HOSTNAME = "mx.ci.test"


def postfix_available() -> bool:
    return os.path.exists(POSTFIX) and os.geteuid() == 0


REMOTE_CLIENT = "203.0.113.25"
"""The client address tests present to Postfix (a documentation network, never contacted)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_address(tag: str = "b", domain: str = "rcpt.test") -> str:
    """A fresh recipient, so tests sharing one Postfix and sink stay independent."""
    return f"{tag}-{uuid.uuid4().hex[:10]}@{domain}"


# ---- SMTP sink --------------------------------------------------------------------------------


@dataclass
class Delivery:
    mail_from: str
    mail_params: list[str]
    rcpts: list[str]
    data: bytes

    def headers_and_body(self) -> tuple[bytes, bytes]:
        head, _, body = self.data.partition(b"\r\n\r\n")
        return head + b"\r\n", body

    def _mta_span(self) -> tuple[int, int] | None:
        """Byte span of Postfix's own Received header: the first Received with "(Postfix)" in it.
        It is usually first, but headers a milter inserted at index 0 sit above it."""
        head = self.data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
        pos = 0
        while pos < len(head):
            end = head.index(b"\r\n", pos) + 2
            while end < len(head) and head[end:end + 1] in (b" ", b"\t"):
                end = head.index(b"\r\n", end) + 2
            field = head[pos:end]
            if field[:9].lower() == b"received:":
                return (pos, end) if b"(Postfix)" in field else None
            pos = end
        return None

    def without_mta_received(self) -> bytes:
        """The delivered bytes minus Postfix's own Received header (when there is one)."""
        span = self._mta_span()
        return self.data if span is None else self.data[:span[0]] + self.data[span[1]:]

    def mta_received(self) -> bytes:
        """Postfix's own Received header with its folds and final CRLF, or b"" if absent."""
        span = self._mta_span()
        return b"" if span is None else self.data[span[0]:span[1]]


class _SinkHandler(socketserver.StreamRequestHandler):
    server: _SinkServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 sink.ci.test ESMTP test sink")
        mail_from, params, rcpts = "", list[str](), list[str]()
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-sink.ci.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                                 b"250-SMTPUTF8\r\n250-SIZE 209715200\r\n250 ENHANCEDSTATUSCODES\r\n")
                self.wfile.flush()
            elif verb == "MAIL":
                m = re.match(r"MAIL FROM:\s*<([^>]*)>\s*(.*)", line, re.I)
                mail_from, params, rcpts = (m.group(1), m.group(2).split(), []) if m else ("", [], [])
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"RCPT TO:\s*<([^>]*)>", line, re.I)
                rcpts.append(m.group(1) if m else line[8:])
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    dl = self.rfile.readline()
                    if not dl or dl == b".\r\n":
                        break
                    chunks.append(dl[1:] if dl.startswith(b"..") else dl)
                self.server.record(Delivery(mail_from, params, rcpts, b"".join(chunks)))
                self.reply("250 2.0.0 Ok: queued in sink")
                mail_from, params, rcpts = "", [], []
            elif verb == "RSET":
                mail_from, params, rcpts = "", [], []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class _SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.deliveries: list[Delivery] = []
        self.cond = threading.Condition()

    def record(self, d: Delivery) -> None:
        with self.cond:
            self.deliveries.append(d)
            self.cond.notify_all()


class SmtpSink:
    """Records every delivered envelope and the exact DATA bytes."""

    def __init__(self) -> None:
        self._srv = _SinkServer()
        self.port: int = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, name="smtp-sink", daemon=True)
        self._thread.start()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._srv.cond:
            return list(self._srv.deliveries)

    def clear(self) -> None:
        with self._srv.cond:
            self._srv.deliveries.clear()

    def wait(self, rcpt: str | None = None, timeout: float = 10.0, count: int = 1) -> list[Delivery]:
        """Deliveries to rcpt (any when None); raises TimeoutError unless `count` arrive in time."""
        def matching() -> list[Delivery]:
            return [d for d in self._srv.deliveries if rcpt is None or rcpt in d.rcpts]
        with self._srv.cond:
            if not self._srv.cond.wait_for(lambda: len(matching()) >= count, timeout):
                raise TimeoutError(f"no delivery to {rcpt or 'anyone'} within {timeout}s; "
                                   f"have {[d.rcpts for d in self._srv.deliveries]}")
            return matching()

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


# ---- fake Dovecot auth ------------------------------------------------------------------------


class _AuthHandler(socketserver.StreamRequestHandler):
    server: _AuthServer

    def send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.send("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
                  f"SPID\t{os.getpid()}\nCUID\t1\nCOOKIE\t{uuid.uuid4().hex}\nDONE")
        pending: dict[str, dict[str, object]] = {}
        for raw in self.rfile:
            parts = raw.decode("utf-8", "replace").rstrip("\n").split("\t")
            if parts[0] == "AUTH" and len(parts) >= 3:
                rid, mech = parts[1], parts[2].upper()
                args = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
                st: dict[str, object] = {"mech": mech, "step": 0}
                pending[rid] = st
                if "resp" in args:
                    self.step(rid, st, args["resp"])
                else:
                    self.send(f"CONT\t{rid}\t" + ("" if mech == "PLAIN" else _b64("Username:")))
            elif parts[0] == "CONT" and len(parts) >= 3 and parts[1] in pending:
                self.step(parts[1], pending[parts[1]], parts[2])

    def step(self, rid: str, st: dict[str, object], resp: str) -> None:
        data = base64.b64decode(resp + "==") if resp else b""
        if st["mech"] == "PLAIN":
            _authz, user, pw = [*data.split(b"\0"), b"", b""][:3]
            self.finish_auth(rid, user.decode(), pw.decode())
        elif st["step"] == 0:
            st["user"], st["step"] = data.decode(), 1
            self.send(f"CONT\t{rid}\t{_b64('Password:')}")
        else:
            self.finish_auth(rid, str(st["user"]), data.decode())

    def finish_auth(self, rid: str, user: str, pw: str) -> None:
        if self.server.users.get(user) == pw:
            self.send(f"OK\t{rid}\tuser={user}")
        else:
            self.send(f"FAIL\t{rid}\tuser={user}")


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class _AuthServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        super().__init__(path, _AuthHandler)


class FakeDovecotAuth:
    """Enough of Dovecot's auth protocol for Postfix's smtpd_sasl_type=dovecot (PLAIN, LOGIN)."""

    def __init__(self, path: str, users: Mapping[str, str]) -> None:
        self.path = path
        self._srv = _AuthServer(path, users)
        os.chmod(path, 0o666)
        self._thread = threading.Thread(target=self._srv.serve_forever, name="fake-dovecot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


# ---- SMTP client ------------------------------------------------------------------------------


@dataclass
class SubmitResult:
    code: int
    text: str
    stage: str           # "connect", "auth", "mail", "rcpt" or "data": where the session ended

    @property
    def ok(self) -> bool:
        return self.stage == "data" and 200 <= self.code < 300

    @property
    def queue_id(self) -> str:
        m = re.search(r"queued as ([0-9A-Za-z]+)", self.text)
        return m.group(1) if m else ""

    def __str__(self) -> str:
        return f"{self.code} {self.text} (at {self.stage})"


def submit(port: int, raw: bytes, mail_from: str, rcpts: Sequence[str],
           auth: tuple[str, str] | None = None, helo: str = "client.test",
           timeout: float = 30.0, client_addr: str | None = None) -> SubmitResult:
    """One SMTP session to 127.0.0.1:port. smtplib turns line ends into CRLF and dot-stuffs.

    `client_addr`: present the session as coming from this address (Postfix's XCLIENT, which
    the test instance allows from loopback), as a remote MTA would; None keeps 127.0.0.1.
    """
    def text(msg: bytes | str) -> str:
        return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)

    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=timeout)
    except smtplib.SMTPConnectError as e:
        return SubmitResult(e.smtp_code, text(e.smtp_error), "connect")
    try:
        s.ehlo(helo)
        if client_addr is not None:
            code, msg = s.docmd("XCLIENT", f"ADDR={client_addr} NAME={helo} HELO={helo}")
            if code != 220:
                return SubmitResult(code, text(msg), "xclient")
            s.ehlo(helo)
        if auth is not None:
            try:
                s.login(*auth)
            except smtplib.SMTPAuthenticationError as e:
                return SubmitResult(e.smtp_code, text(e.smtp_error), "auth")
        code, msg = s.mail(mail_from.strip("<>"))
        if code != 250:
            return SubmitResult(code, text(msg), "mail")
        accepted = 0
        last = (code, msg)
        for r in rcpts:
            last = s.rcpt(r.strip("<>"))
            if last[0] in (250, 251):
                accepted += 1
        if not accepted:
            return SubmitResult(last[0], text(last[1]), "rcpt")
        code, msg = s.data(raw)
        return SubmitResult(code, text(msg), "data")
    except smtplib.SMTPDataError as e:       # refused at the DATA command itself
        return SubmitResult(e.smtp_code, text(e.smtp_error), "data")
    except smtplib.SMTPServerDisconnected as e:
        return SubmitResult(0, f"disconnected: {e}", "data")
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


# ---- Postfix ----------------------------------------------------------------------------------

_MASTER_CF = """\
{inbound}    inet n - n - - smtpd
  -o syslog_name=postfix/inbound
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path={auth_sock}
  -o smtpd_tls_security_level=none
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
{originating} inet n - n - - smtpd
  -o syslog_name=postfix/orig
  -o milter_macro_daemon_name=ORIGINATING
{alt} inet n - n - - smtpd
  -o syslog_name=postfix/alt
  -o smtpd_milters={alt_milter}
"""


class PostfixError(RuntimeError):
    pass


@dataclass
class PostfixInstance:
    """A private Postfix; see the module docstring. `main` adds/overrides main.cf settings."""

    milter: str | None = None
    main: Mapping[str, str] = field(default_factory=dict)
    users: Mapping[str, str] = field(default_factory=lambda: {"user1@sender.test": "secret"})
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mw-postfix-")))

    def __post_init__(self) -> None:
        self.base.chmod(0o755)             # smtpd runs as user postfix and must reach the sockets
        self.etc = self.base / "etc"
        self.milter_dir = self.base / "milter"
        for d in (self.etc, self.base / "spool", self.base / "log", self.milter_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.milter_dir.chmod(0o755)
        data = self.base / "data"
        data.mkdir(exist_ok=True)
        shutil.chown(data, "postfix")
        self.milter_path = self.milter_dir / "mailwarden.sock"
        self.alt_milter_path = self.milter_dir / "alt.sock"
        if self.milter is None:
            self.milter = f"unix:{self.milter_path}"
        self.alt_milter = f"unix:{self.alt_milter_path}"
        self.ports = {name: free_port() for name in ("inbound", "submission", "originating", "alt")}
        self.sink = SmtpSink()
        self.auth = FakeDovecotAuth(str(self.base / "auth.sock"), self.users)
        self.started = False
        self._write_config()

    # ---- ports ---------------------------------------------------------------------------------
    @property
    def inbound(self) -> int:
        return self.ports["inbound"]

    @property
    def submission(self) -> int:
        return self.ports["submission"]

    @property
    def originating(self) -> int:
        return self.ports["originating"]

    @property
    def alt(self) -> int:
        return self.ports["alt"]

    # ---- config --------------------------------------------------------------------------------
    def _main_settings(self) -> dict[str, str]:
        b = str(self.base)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": f"{b}/spool",
            "data_directory": f"{b}/data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": f"{b}/log/maillog",
            "maillog_file_prefixes": b,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": HOSTNAME,
            "mydomain": "ci.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8, 203.0.113.0/24",
            # Tests present remote clients with XCLIENT (see submit()).
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.sink.port}",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            # Clients on 127.0.0.1 would otherwise count as local: no header rewriting in tests.
            "local_header_rewrite_clients": "",
            "smtpd_milters": self.milter or "",
            "non_smtpd_milters": "$smtpd_milters",
            "milter_default_action": "tempfail",
            "milter_connect_timeout": "10s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "20s",
            # Fast tests: no flow-control sleeps, no error sleeps, quick retries.
            "in_flow_delay": "0",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200",
            "queue_run_delay": "10s",
            "minimal_backoff_time": "10s",
            "maximal_backoff_time": "20s",
            "message_size_limit": "104857600",
        }
        settings.update(self.main)
        return settings

    def _write_config(self) -> None:
        (self.etc / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in self._main_settings().items()))
        (self.etc / "master.cf").write_text(_MASTER_CF.format(
            inbound=f"127.0.0.1:{self.inbound}", submission=f"127.0.0.1:{self.submission}",
            originating=f"127.0.0.1:{self.originating}", alt=f"127.0.0.1:{self.alt}",
            auth_sock=self.auth.path, alt_milter=self.alt_milter))

    def _cmd(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise PostfixError(f"{' '.join(args)}: rc={p.returncode}\n{p.stdout}{p.stderr}\n"
                               f"--- maillog tail ---\n{self.maillog()[-3000:]}")
        return p

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> None:
        self._cmd(POSTFIX, "-c", str(self.etc), "start")
        self.started = True
        deadline = time.monotonic() + timeout
        for port in self.ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise PostfixError(f"port {port} not listening; maillog:\n{self.maillog()}") from None
                    time.sleep(0.05)

    def master_pid(self) -> int | None:
        try:
            return int((self.base / "spool/pid/master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.started:
            return
        pid = self.master_pid()
        self._cmd(POSTFIX, "-c", str(self.etc), "stop", check=False)
        deadline = time.monotonic() + timeout
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and _alive(pid):
            self._cmd(POSTFIX, "-c", str(self.etc), "abort", check=False)
            time.sleep(0.5)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def close(self) -> None:
        """Stop Postfix, the sink and the auth server; remove the directory (unless
        MW_KEEP_POSTFIX is set, for debugging)."""
        try:
            self.stop()
        finally:
            self.sink.stop()
            self.auth.stop()
            if not os.environ.get("MW_KEEP_POSTFIX"):
                shutil.rmtree(self.base, ignore_errors=True)

    @contextlib.contextmanager
    def settings(self, **settings: str) -> Iterator[PostfixInstance]:
        """Temporarily change main.cf settings (reload, ~1 s each way)."""
        before = dict(self.main)
        self.postconf(**settings)
        try:
            yield self
        finally:
            self.main = before
            self.postconf()

    def postconf(self, **settings: str) -> None:
        """Change main.cf settings and reload (about 1 s before the new settings are live)."""
        self.main = {**self.main, **settings}
        self._write_config()
        if self.started:
            self._cmd(POSTFIX, "-c", str(self.etc), "reload")
            time.sleep(1.2)

    # ---- mail ----------------------------------------------------------------------------------
    def submit(self, port: int, raw: bytes, mail_from: str, rcpts: Sequence[str],
               auth: tuple[str, str] | None = None, helo: str = "client.test",
               client_addr: str | None = REMOTE_CLIENT) -> SubmitResult:
        """As a remote client (REMOTE_CLIENT) by default: loopback mail is outbound by default."""
        return submit(port, raw, mail_from, rcpts, auth=auth, helo=helo, client_addr=client_addr)

    def wait_delivery(self, rcpt: str | None = None, timeout: float = 10.0) -> Delivery:
        return self.sink.wait(rcpt, timeout)[-1]

    def assert_no_delivery(self, rcpt: str, wait: float = 0.5) -> None:
        time.sleep(wait)
        got = [d for d in self.sink.deliveries if rcpt in d.rcpts]
        assert not got, f"unexpected delivery to {rcpt}: {got[0].data[:300]!r}"
        queued = [q for q in self.queue() if any(r.get("address") == rcpt for r in q.get("recipients", []))]
        assert not queued, f"message to {rcpt} sits in the queue: {queued}"

    def queue(self) -> list[dict[str, Any]]:
        """postqueue -j: one dict per queued message (queue_name, queue_id, sender, recipients...)."""
        p = self._cmd("postqueue", "-c", str(self.etc), "-j")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def hold_queue(self) -> list[str]:
        return [str(q["queue_id"]) for q in self.queue() if q.get("queue_name") == "hold"]

    def flush_queues(self) -> None:
        """Delete every queued message (all queues)."""
        self._cmd("postsuper", "-c", str(self.etc), "-d", "ALL", check=False)

    def maillog(self) -> str:
        try:
            return (self.base / "log/maillog").read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, needle: str | re.Pattern[str], timeout: float = 5.0) -> str:
        """The first maillog line containing needle (postlogd writes asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.maillog().splitlines():
                if (needle.search(line) if isinstance(needle, re.Pattern) else needle in line):
                    return line
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not in maillog:\n{self.maillog()[-3000:]}")
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


# ---- mailwarden serve -------------------------------------------------------------------------


class MailwardenProcess:
    """`mailwarden serve` on a unix socket, as a subprocess of the test run."""

    def __init__(self, socket_path: str | os.PathLike[str] | None = None, config: str | None = None,
                 zone_text: str = "", zones: Iterable[str | os.PathLike[str]] = (),
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 script: str | os.PathLike[str] | None = None, user: str | None = "root") -> None:
        self.script = script
        self.user = user
        self.workdir = Path(tempfile.mkdtemp(prefix="mw-serve-"))
        self.workdir.chmod(0o755)          # Postfix (user postfix) must reach a socket in here
        # Unix socket paths are limited to 107 bytes: the default lives in the short workdir.
        self.socket_path = Path(socket_path) if socket_path is not None else self.workdir / "milter.sock"
        self.spec = f"unix:{self.socket_path}"
        self.config_path: Path | None = None
        zone = self.workdir / "zone.txt"
        zone.write_text(zone_text)
        self.zones = [zone, *(Path(z) for z in zones)]
        if config is None or "[log]" not in config:
            # The tests read serve's output: never let "auto" pick a host's syslog or journal.
            config = (config or "") + '\n[log]\ntarget = "stderr"\n'
        if config is None or "[reports]" not in config:
            # Report rows go to this instance's own store, never the system's default one.
            config = (config or "") + f'\n[reports]\nstore = "sqlite:///{self.workdir}/reports.db"\n'
        if script is not None and (config is None or "[dns]" not in config):
            # A wrapper script may not take --zone: keep DNS off the network through the config.
            config = (config or "") + "\n[dns]\nzones = [" + ", ".join(
                json.dumps(str(z)) for z in self.zones) + "]\n"
        if config is not None:
            self.config_path = self.workdir / "mailwarden.toml"
            self.config_path.write_text(config)
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = self.workdir / "mailwarden.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # Tests run as root: the workers stay root (they read the tests' temporary files) unless
        # the test names a user (tests/adapter/test_privileges.py).
        user = ["--user", self.user] if self.user and os.geteuid() == 0 and "--user" not in self.args else []
        if self.script is not None:
            cmd = [sys.executable, str(self.script), "--socket", self.spec, *user]
            if self.config_path is not None:
                cmd += ["--config", str(self.config_path)]
            return cmd + self.args
        cmd = [sys.executable, "-m", "mailwarden", "serve", "--socket", self.spec, *user]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        for z in self.zones:
            cmd += ["--zone", str(z)]
        return cmd + self.args

    def start(self, timeout: float = 15.0) -> MailwardenProcess:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path.is_socket():
            self.socket_path.unlink()     # stale, from an earlier run
        env = {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mailwarden serve exited rc={self.proc.returncode}:\n{self.log()}")
            if self.socket_path.is_socket():
                try:
                    with MilterClient.connect(self.spec, timeout=5) as mc:
                        mc.optneg()
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mailwarden serve did not answer on {self.spec}:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit status."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        if not os.environ.get("MW_KEEP_POSTFIX"):
            shutil.rmtree(self.workdir, ignore_errors=True)
