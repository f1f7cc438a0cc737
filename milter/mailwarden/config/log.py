"""[log]: where the log lines go and how they look.

How much is logged stays `[milter] log_level`, where it has always been: a config that sets it
keeps working, and [log] only adds where and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# syslog(3)'s facilities, as Python's SysLogHandler names them.
FACILITIES = (
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)


@dataclass(frozen=True)
class LogSection:
    target: Literal["auto", "stderr", "syslog", "journald"] = "auto"
    """Where lines go. "auto": journald when started by systemd with stderr on the journal
    (JOURNAL_STREAM), stderr when it is a terminal, else syslog. journald lines carry sd-daemon
    <N> priority prefixes and no timestamp of ours (journald adds its own); syslog lines go to
    `syslog_socket` with `facility`, beside Postfix's in mail.log. When the syslog socket does
    not exist, "auto" falls back to stderr (with a warning); "syslog" refuses to start."""
    facility: str = "mail"
    """syslog facility: mail (Postfix's), daemon, local0 to local7, ..."""
    syslog_socket: str = "/dev/log"
    """The local syslog daemon's unix datagram socket."""
    format: Literal["text", "json"] = "text"
    """text: Postfix-like, `mailwarden[PID]: warning: ...` (error:, fatal:, debug:; info lines
    unmarked, as in Postfix). json: one object per line with time, level, pid and message."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.facility not in FACILITIES:
            problems.append(("facility", f"not a syslog facility: {self.facility!r} "
                                         f"(one of {', '.join(FACILITIES)})"))
        if not self.syslog_socket.startswith("/"):
            problems.append(("syslog_socket", f"must be an absolute path, got {self.syslog_socket!r}"))
        return problems
