"""The listening socket: its spec, its file, who serves it, and how to find it among the fds.

libmilter opens the socket (opensocket) in the supervisor; every worker inherits it. Only the
supervisor ever removes the socket file, and only the one it created: libmilter's own clean-up
(which a listener that stops runs when it is not root) is never reached, see workers.py.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import stat
import struct

from mailwarden.errors import MailwardenError

LOG = logging.getLogger("mailwarden.milter")


class SocketInUse(MailwardenError):
    """Another live process answers on the socket: starting would take it over."""


def unix_path(spec: str) -> str | None:
    """The file of a unix socket spec (unix:/p, local:/p or /p), None for inet."""
    for prefix in ("unix:", "local:"):
        if spec.startswith(prefix):
            return spec[len(prefix):]
    return spec if spec.startswith("/") else None


def inet_address(spec: str) -> tuple[socket.AddressFamily, tuple[str, int] | None]:
    """(family, (host, port)) to connect to an inet/inet6 spec; a wildcard host means loopback."""
    kind, _, rest = spec.partition(":")
    port, _, host = rest.partition("@")
    family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
    if kind not in ("inet", "inet6") or not port.isdigit():
        return family, None
    if not host or host in ("0.0.0.0", "::", "*"):
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    return family, (host, int(port))


def _connect(spec: str, timeout: float) -> socket.socket | None:
    path = unix_path(spec)
    family, address = (socket.AF_UNIX, path) if path is not None else inet_address(spec)
    if address is None:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except OSError:
        sock.close()
        return None
    return sock


def served_by(spec: str) -> int | None:
    """The pid of the process listening on a live unix socket, 0 if one answers on an inet
    socket (whose listener Linux does not name), None when nobody answers (stale or absent)."""
    sock = _connect(spec, 2.0)
    if sock is None:
        return None
    with sock:
        if sock.family != socket.AF_UNIX:
            return 0
        # The listener's credentials, recorded by the kernel when it called listen().
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[0])


def refuse_if_served(spec: str) -> None:
    """Raise SocketInUse when another instance answers on `spec`; a stale socket file is left
    for libmilter to replace."""
    pid = served_by(spec)
    if pid is not None:
        by = f" by pid {pid}" if pid else ""
        raise SocketInUse(f"socket {spec} is served{by}; stop that instance first")


class SocketFile:
    """The unix socket's file: its mode and group once created, and its removal at the end,
    only while it is still the file this process created."""

    def __init__(self, spec: str, mode: int, group: str) -> None:
        self.path = unix_path(spec)
        self._mode = mode
        self._gid = -1
        self._made: tuple[int, int] | None = None
        if group and self.path is not None:
            try:
                self._gid = grp.getgrnam(group).gr_gid
            except KeyError:
                LOG.warning("socket group %r does not exist; leaving the socket's group as is", group)

    def prepare(self) -> None:
        """Make the socket's directory (before libmilter creates the socket)."""
        if self.path is not None:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)

    def created(self) -> None:
        """Set mode and group; remember which file is ours."""
        if self.path is None:
            return
        try:
            st = os.lstat(self.path)
            self._made = (st.st_dev, st.st_ino)
            os.chmod(self.path, self._mode)
            if self._gid >= 0:
                os.chown(self.path, -1, self._gid)
        except OSError as exc:
            LOG.error("cannot set permissions on %s: %s", self.path, exc)

    def remove(self) -> None:
        """Remove the socket file, unless another instance has replaced it since."""
        if self.path is None or self._made is None:
            return
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == self._made:
                os.unlink(self.path)
        self._made = None


def socket_fds() -> set[int] | None:
    """The open socket descriptors (None without /proc)."""
    try:
        listed = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return None
    return {fd for fd in listed if _is_socket(fd)}


def added_listener(before: set[int] | None) -> int | None:
    """The one socket descriptor opened since `before` (libmilter's listening socket)."""
    if before is None:
        return None
    added = list((socket_fds() or set()) - before)
    return added[0] if len(added) == 1 else None


def no_delay(fd: int) -> None:
    """Turn Nagle off on an inet listening socket; Linux hands TCP_NODELAY on to every socket
    accepted from it, and libmilter (which accepts in C) sets nothing itself.

    libmilter writes each packet of a reply separately: at end of message the header edits, then
    the verdict. With Nagle the verdict waits for the MTA to ACK the edit, which a client may
    delay by up to 40 ms: measured with milterload over inet, 21 -> 383 messages/s.
    """
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connections(exclude: set[int]) -> int:
    """Connected stream sockets this process holds, outside `exclude`: libmilter's sessions."""
    count = 0
    for fd in (socket_fds() or set()) - exclude:
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=os.dup(fd))
            with sock:
                if (sock.type == socket.SOCK_STREAM
                        and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
                    count += 1
    return count


def _is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False
