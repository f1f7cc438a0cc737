"""Logging: where the lines go ([log] target) and how they look ([log] format).

Every line carries its severity. In text, as Postfix writes it: `mailwarden[PID]: warning: ...`,
`error: `, `fatal: ` (critical), `debug: `, and info lines unmarked, so a per-message line reads
like Postfix's own. JSON lines have a `level` member. Syslog and journald also keep it where they
keep it (the syslog priority, sd-daemon's `<N>` prefix), so `journalctl -p warning` and syslog
filters work. The per-message lines are keyed by the Postfix
queue id, like Postfix's own (adapters/summary.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import IO

from mailwarden.config.log import LogSection

LOG = logging.getLogger("mailwarden")

# sd-daemon(3) priorities, as syslog's.
_SD_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_WORD = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error",
         logging.CRITICAL: "fatal"}
_STDERR_ONLY = LogSection(target="stderr")
_active = ""  # the target setup() chose last


class _Formatter(logging.Formatter):
    """One record as `[timestamp ]mailwarden[PID]: level: message`, or as one JSON object."""

    def __init__(self, fmt: str, stamp: bool, tag: bool, sd_prefix: bool = False) -> None:
        super().__init__()
        self.json = fmt == "json"
        self.stamp = stamp
        self.tag = tag
        self.sd_prefix = sd_prefix

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        level = _WORD.get(record.levelno, record.levelname.lower())
        if self.json:
            obj: dict[str, object] = {"level": level, "pid": record.process, "message": message}
            if self.stamp:
                obj = {"time": _iso_time(record.created), **obj}
            text = json.dumps(obj, ensure_ascii=False)
        else:
            text = f"{level}: {message}" if level != "info" else message
            if self.tag:
                text = f"mailwarden[{record.process}]: {text}"
            if self.stamp:
                text = f"{time.strftime('%b %e %H:%M:%S', time.localtime(record.created))} {text}"
        if self.sd_prefix:
            # journald reads one entry per line: every line of a traceback gets the priority.
            prefix = f"<{_SD_PRIORITY.get(record.levelno, 6)}>"
            text = "\n".join(prefix + line for line in text.split("\n"))
        return text


class _SyslogHandler(logging.handlers.SysLogHandler):
    # syslog(3) sends no NUL; some daemons would keep it as part of the message.
    append_nul = False

    def handleError(self, record: logging.LogRecord) -> None:
        # The syslog daemon went away (it reconnects at the next line): one line, not a traceback.
        exc = sys.exc_info()[1]
        with contextlib.suppress(Exception):
            sys.stderr.write(f"mailwarden: cannot log to syslog at {self.address}: {exc}\n")


def _reachable(path: str) -> str:
    """Why the syslog socket at `path` cannot take a line, or "" when it can (SysLogHandler itself
    ignores a missing socket, as openlog(3) does)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            probe.connect(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def _iso_time(created: float) -> str:
    """ISO 8601 local time with milliseconds and the UTC offset: 2026-12-01T16:20:00.123+0000."""
    local = time.localtime(created)
    millis = int(created % 1 * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', local)}.{millis:03d}{time.strftime('%z', local)}"


def resolve_target(section: LogSection, env: Mapping[str, str], stream: IO[str]) -> str:
    """The target `auto` stands for: journald when stderr is systemd's journal stream (the
    JOURNAL_STREAM device:inode is stderr's, as sd_journal_stream_fd(3) says to check), stderr on a
    terminal, else syslog."""
    if section.target != "auto":
        return section.target
    if _is_journal(env.get("JOURNAL_STREAM", ""), stream):
        return "journald"
    try:
        if stream.isatty():
            return "stderr"
    except (OSError, ValueError):
        pass
    return "syslog"


def _is_journal(value: str, stream: IO[str]) -> bool:
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def setup(level: str = "info", stream: IO[str] | None = None, section: LogSection | None = None,
          env: Mapping[str, str] | None = None) -> str:
    """Send the `mailwarden` loggers' lines where `section` says (stderr when None); the target used.

    A syslog socket that cannot be reached is a CommandFailed with `target = "syslog"`; with
    `auto` the lines go to stderr instead, after a warning saying so.
    """
    from mailwarden.errors import CommandFailed

    section = section or _STDERR_ONLY
    out = stream or sys.stderr
    target = resolve_target(section, os.environ if env is None else env, out)
    fallback = ""
    handler: logging.Handler
    if target == "syslog":
        facility = logging.handlers.SysLogHandler.facility_names[section.facility]
        why = _reachable(section.syslog_socket)
        if why and section.target == "syslog":
            raise CommandFailed(f"[log] syslog_socket {section.syslog_socket}: {why}")
        if why:
            fallback = f"cannot log to syslog at {section.syslog_socket} ({why}): logging to stderr"
            target = "stderr"
        else:
            handler = _SyslogHandler(section.syslog_socket, facility)
            handler.setFormatter(_Formatter(section.format, stamp=True, tag=True))
    if target == "journald":
        handler = logging.StreamHandler(out)
        handler.setFormatter(_Formatter(section.format, stamp=False, tag=False, sd_prefix=True))
    elif target == "stderr":
        handler = logging.StreamHandler(out)
        handler.setFormatter(_Formatter(section.format, stamp=True, tag=True))
    root = logging.getLogger("mailwarden")
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    if fallback:
        LOG.warning("%s", fallback)
    global _active
    _active = target
    return target


def to_syslog() -> bool:
    """Whether log lines go to syslog, where a line printed on stderr would not be seen."""
    return _active == "syslog"
