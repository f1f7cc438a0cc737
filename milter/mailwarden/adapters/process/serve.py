"""`mailwarden serve`: open the socket, fork the workers, supervise them until told to stop."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from mailwarden import metrics
from mailwarden.adapters.process import privileges, sockets
from mailwarden.adapters.process.balance import Balance
from mailwarden.adapters.process.supervise import Supervisor
from mailwarden.adapters.process.workers import Tally, WorkerSetup, run_worker, worker_count
from mailwarden.adapters.pymilter import LIBMILTER, RuntimeHolder, install
from mailwarden.bootstrap import Runtime
from mailwarden.errors import ConfigError, MailwardenError
from mailwarden.rules.watch import PackWatch

LOG = logging.getLogger("mailwarden.milter")

RESTART_ONLY = ("socket", "socket_mode", "socket_group", "timeout", "workers", "pin_workers", "user",
                "group", "stop_grace", "log_level")
"""[milter] keys a reload cannot change: they shape the socket, libmilter and the processes."""


class SocketError(MailwardenError):
    """The socket cannot be opened."""


def serve(holder: RuntimeHolder, socket_spec: str, load: Callable[[], Runtime] | None = None,
          user: str | None = None, group: str | None = None,
          rule_dirs: Callable[[], Sequence[Path]] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads through `load` (None: nothing to reload), and
    so does a settled change in the packs of `rule_dirs()` (checked every [rules] reload_interval).
    The workers run as `user` and `group` (None: [milter] user and group; see privileges.py).

    Raises SocketInUse when another instance answers on the socket, SocketError when it cannot
    be opened, PrivilegeError when the user cannot be used."""
    config = holder.current.config.milter
    identity = privileges.resolve(config.user if user is None else user,
                                  config.group if group is None else group)
    sockets.refuse_if_served(socket_spec)
    if identity is not None:
        metrics.grant(identity.uid, identity.gid)  # the workers write their metrics as that user
    sock = sockets.SocketFile(socket_spec, int(config.socket_mode, 8), config.socket_group)
    sock.prepare()
    tally = Tally()
    install(holder, tally, inet=socket_spec.startswith(("inet:", "inet6:")))
    listen_fd = _open(socket_spec, config.timeout)
    sock.created()
    count = worker_count(config.workers)
    balance = Balance(2 * count) if count > 1 else None
    setup = WorkerSetup(listen_fd, LIBMILTER.main, tally, balance, config.pin_workers and count > 1,
                        config.stop_grace, lambda: privileges.drop(identity))

    def stopping() -> None:
        sock.remove()  # Postfix's next connect fails at once instead of waiting in the backlog
        os.close(listen_fd)

    packs = PackWatch(rule_dirs) if rule_dirs is not None and load is not None else None

    def reload() -> bool:
        if load is None:
            return False
        if packs is not None:
            packs.rebase()
        return metrics.reloaded(_reload(holder, load))

    supervisor = Supervisor(
        count, lambda seat, slot, ready: run_worker(setup, seat, slot, ready), config.stop_grace,
        vacate=balance.vacate if balance is not None else (lambda slot: None),
        reload=reload, stopping_hook=stopping,
        watch=packs.changed if packs is not None else (lambda: False),
        watch_interval=lambda: holder.current.config.rules.reload_interval if packs is not None else 0.0,
    )
    LOG.info("listening on %s%s", socket_spec, f"; workers run as {identity.user}" if identity else "")
    try:
        return supervisor.run()
    finally:
        sock.remove()
        LOG.info("stopped")


def _open(socket_spec: str, timeout: int) -> int:
    """Have libmilter create its listening socket now, so its permissions are right before
    Postfix connects; returns its descriptor."""
    LIBMILTER.setconn(socket_spec)
    LIBMILTER.settimeout(timeout)
    old_umask = os.umask(0o177)
    before = sockets.socket_fds()
    try:
        LIBMILTER.opensocket(True)
    except LIBMILTER.error as exc:
        raise SocketError(f"cannot open socket {socket_spec}: {exc}") from None
    finally:
        os.umask(old_umask)
    fd = sockets.added_listener(before)
    if fd is None:
        raise SocketError(f"cannot find libmilter's listening socket for {socket_spec} in /proc/self/fd")
    sockets.no_delay(fd)
    return fd


def _reload(holder: RuntimeHolder, load: Callable[[], Runtime]) -> bool:
    """Build the new runtime, checked completely; on any error keep the old one."""
    try:
        runtime = load()
    except ConfigError as exc:
        for problem in exc.problems:
            LOG.error("reload refused, keeping the running configuration: %s", problem)
        return False
    except MailwardenError as exc:
        LOG.error("reload refused, keeping the running configuration: %s", exc)
        return False
    except Exception:
        LOG.exception("reload refused, keeping the running configuration")
        return False
    old, new = holder.current.config.milter, runtime.config.milter
    for key in RESTART_ONLY:
        if getattr(old, key) != getattr(new, key):
            LOG.warning("reload: [milter] %s changes only at a restart; still %r", key, getattr(old, key))
    holder.swap(runtime)  # for the workers forked from now on
    LOG.info("reload: config %s, %d stages: %s", runtime.config.source, len(runtime.pipeline.stages),
             " ".join(s.name for s in runtime.pipeline.stages))
    return True
