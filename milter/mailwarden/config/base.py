"""The foundation's sections: [milter], [policy], [hopcount], [dns]."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from mailwarden.config.loader import FilePath


@dataclass(frozen=True)
class MilterSection:
    socket: str = "unix:/run/pymilter.sock"
    """libmilter socket: unix:/path, or inet:PORT@HOST (inet6:PORT@HOST).
    With Debian's chrooted smtpd, Postfix resolves unix:/run/pymilter.sock as
    /var/spool/postfix/run/pymilter.sock: point this at the path inside the chroot."""
    socket_mode: str = "0660"
    """Octal mode of a unix socket. Postfix runs as user postfix and needs write access;
    a root milter's socket under umask 022 would make Postfix answer 451 at MAIL FROM."""
    socket_group: str = "postfix"
    """Group of a unix socket; skipped with a warning when the group does not exist."""
    timeout: int = 600
    """libmilter's I/O timeout in seconds."""
    on_error: Literal["tempfail", "accept"] = "tempfail"
    """What a stage that fails turns into: tempfail (451 4.3.0, the MTA retries) or accept."""
    spool_threshold: int = 1048576
    """Bodies larger than this many bytes are spooled to a temporary file."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """One info line per message, keyed by the Postfix queue id."""
    workers: int | Literal["auto"] = "auto"
    """Processes that serve the socket, each with libmilter's thread per connection. Python runs
    one thread at a time per process, so one worker per CPU spreads the work over the cores;
    "auto" is the number of CPUs, at most 8."""
    pin_workers: bool = True
    """With two or more workers, keep worker i on the i-th CPU mailwarden may use. A process
    hands Python's lock between its threads far more cheaply within one core than across cores
    (measured: verify throughput x1.3 to x1.8). Turn off if other busy processes share the CPUs."""
    user: str = "mailwarden"
    """The user the workers run as. Started as root, mailwarden opens the socket, the keys and
    the rule packs, then drops to this user (and `group`) before any mail. The user must exist
    (make run creates it); running as root needs user = "root" written out. Ignored when not
    started as root. Changes take a restart."""
    group: str = ""
    """The workers' group; empty means the user's own. Key files stay readable by root alone:
    they are read before the drop."""
    stop_grace: float = 10.0
    """Seconds a worker that stops (SIGTERM, or replaced by a reload) has to finish the
    connections it holds; past them it closes them and Postfix retries. Keep it below
    systemd's TimeoutStopSec."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not self.socket.startswith(("unix:", "local:", "inet:", "inet6:", "/")):
            problems.append(("socket", f"not a libmilter socket spec: {self.socket!r}"))
        try:
            mode = int(self.socket_mode, 8)
            if not 0 <= mode <= 0o777:
                raise ValueError
        except ValueError:
            problems.append(("socket_mode", f"not an octal file mode: {self.socket_mode!r}"))
        if self.timeout <= 0:
            problems.append(("timeout", "must be positive"))
        if self.spool_threshold < 0:
            problems.append(("spool_threshold", "must not be negative"))
        if self.workers != "auto" and not 1 <= self.workers <= 256:
            problems.append(("workers", f"must be \"auto\" or 1 to 256, got {self.workers}"))
        if not self.user:
            problems.append(("user", 'must name a user ("root" to run as root)'))
        if not 0 <= self.stop_grace <= 3600:
            problems.append(("stop_grace", f"must be 0 to 3600 seconds, got {self.stop_grace}"))
        return problems


@dataclass(frozen=True)
class PolicySection:
    originating_daemons: tuple[str, ...] = ("ORIGINATING",)
    """Values of {daemon_name} (read at connect) that mark outbound mail. Set on Postfix's
    submission service with: -o milter_macro_daemon_name=ORIGINATING"""
    trusted_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    """Client networks whose mail is outbound (stripped, signed, never DMARC-rejected). The
    default is loopback, as OpenDKIM's InternalHosts and OpenDMARC's IgnoreHosts: mail from cron
    and web apps (Postfix's sendmail/pickup reaches non_smtpd_milters as localhost[127.0.0.1]) is
    the host's own. Write `trusted_networks = []` to treat loopback clients as inbound.
    SASL-authenticated clients ({auth_authen}) are always outbound."""
    authserv_id: str = ""
    """The authserv-id of our Authentication-Results header; empty means the host name."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        for i, net in enumerate(self.trusted_networks):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                problems.append((f"trusted_networks[{i}]", str(exc)))
        return problems


@dataclass(frozen=True)
class HopcountSection:
    limit: int = 50
    """Reject with "554 5.4.0 Error: too many hops" when the visible Received headers + 1 (the
    MTA's own, which milters never see) reach this, as Postfix's hopcount_limit. 0 disables."""

    def check(self) -> list[tuple[str, str]]:
        return [("limit", "must not be negative")] if self.limit < 0 else []


@dataclass(frozen=True)
class DnsSection:
    zones: tuple[FilePath, ...] = ()
    """RFC 1035 master files that answer every query instead of the network (tests, dry-run).
    Relative paths are relative to the config file."""
    timeout: float = 5.0
    """Seconds for one lookup, retries included; past it the result is a temporary error."""
    nameservers: tuple[str, ...] = ()
    """Resolver addresses; empty means /etc/resolv.conf."""
    cache_size: int = 10000
    """Answers kept in the live resolver's cache, each for its TTL."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.timeout <= 0:
            problems.append(("timeout", "must be positive"))
        for i, ns in enumerate(self.nameservers):
            try:
                ipaddress.ip_address(ns)
            except ValueError as exc:
                problems.append((f"nameservers[{i}]", str(exc)))
        return problems
