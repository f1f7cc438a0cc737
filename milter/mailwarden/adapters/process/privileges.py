"""Who the workers run as: `[milter] user` and `group`, dropped to before any mail.

Started as root, the supervisor opens the socket, reads the keys and the rule packs, and only
then forks; each worker sets its groups, group and user before its first thread, so it holds the
keys in memory and never needs to read them again. The supervisor itself handles no mail and
stays root: a reload re-reads keys that only root may read, and it alone removes the socket file.
Running the workers as root needs `user = "root"` written out. Started as another user, there
is nothing to drop and the setting is ignored.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import logging
import os
import pwd
import signal
from dataclasses import dataclass

from mailwarden.errors import MailwardenError

LOG = logging.getLogger("mailwarden.milter")
_PR_SET_PDEATHSIG = 1


class PrivilegeError(MailwardenError):
    """The configured user or group cannot be used."""


@dataclass(frozen=True)
class Identity:
    user: str
    uid: int
    gid: int


def resolve(user: str, group: str) -> Identity | None:
    """The identity to drop to, or None when there is nothing to drop.

    Raises PrivilegeError, before anything is opened, when started as root and the user is
    missing, unknown, or root by another name."""
    if os.geteuid() != 0:
        if user and user not in ("root", _current_user()):
            LOG.info("not started as root: running as %s, not [milter] user %r", _current_user(), user)
        return None
    if user == "root":
        LOG.warning('running as root: [milter] user = "root"')
        return None
    if not user:
        raise PrivilegeError('refusing to run as root: set [milter] user (user = "root" to insist)')
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(
            f"[milter] user {user!r} does not exist: create it (useradd --system --no-create-home "
            f'--shell /usr/sbin/nologin {user}; make run does), or write user = "root"') from None
    if entry.pw_uid == 0:
        raise PrivilegeError(f'[milter] user {user!r} is root by another name: write user = "root"')
    gid = entry.pw_gid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise PrivilegeError(f"[milter] group {group!r} does not exist") from None
    return Identity(user, entry.pw_uid, gid)


def drop(identity: Identity | None) -> None:
    """Become `identity` for good (in a worker, before its first thread)."""
    if identity is None:
        return
    parent = os.getppid()
    os.initgroups(identity.user, identity.gid)  # the user's other groups: keys readable by one
    os.setgid(identity.gid)
    os.setuid(identity.uid)
    if os.getuid() != identity.uid or os.geteuid() != identity.uid:
        raise PrivilegeError(f"could not become {identity.user}")
    # Linux forgets the parent-death signal when the credentials change: set it again.
    die_with(parent)


def die_with(parent: int) -> None:
    """This process dies by SIGKILL when `parent` does (see supervise.py)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
