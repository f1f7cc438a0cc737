"""`[milter] user` and `group`: started as root, the workers drop to them before any mail, with
the keys already read; running as root must be written out. Needs root."""

from __future__ import annotations

import grp
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.dkim.dkimsupport import MSG, ZONE, results, safe_keys, sign_config
from tests.support.milterclient import MilterClient, apply_mods
from tests.support.postfix import MailwardenProcess
from tests.support.processes import children as _children
from tests.support.processes import until

pytestmark = pytest.mark.root
USER = "mailwarden"  # the default [milter] user


@pytest.fixture(scope="module")
def system_user() -> pwd.struct_passwd:
    """The default user, created as `make run` creates it."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def _ids(pid: int) -> tuple[int, int, set[int]]:
    """(real uid, real gid, supplementary groups) from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return (int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0]),
            {int(g) for g in fields["Groups"].split()})


def _sign(spec: str) -> list[str]:
    with MilterClient.connect(spec) as mc:
        mc.optneg()
        res = mc.send_message(MSG, "<alice@example.com>", ["<bob@example.org>"], daemon_name="ORIGINATING")
        return results(apply_mods(MSG, res.mods, leadspc=mc.leadspc))


def test_workers_run_as_the_configured_user_and_sign_with_keys_only_root_reads(
        system_user: pwd.struct_passwd, tmp_path: Path) -> None:
    keys = safe_keys(tmp_path / "keys")  # 0600 root, in a directory only root may enter
    keys.chmod(0o700)
    proc = MailwardenProcess(config="[milter]\nworkers = 2\n" + sign_config(keys),
                             zone_text=ZONE.read_text(), user=None)  # the config's default user
    try:
        proc.start()
        assert proc.proc is not None
        until(lambda: len(_children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
        assert _sign(proc.spec) == ["pass", "pass"]
        # (A worker forked a moment ago may not have dropped yet: it serves only once it has.)
        until(lambda: all(_ids(w)[:2] == (system_user.pw_uid, system_user.pw_gid)
                          for w in _children(proc.proc.pid)), 10,  # type: ignore[union-attr]
              "both workers to run as the user")
        for worker in _children(proc.proc.pid):
            assert 0 not in _ids(worker)[2]  # no root group kept
        assert _ids(proc.proc.pid)[0] == 0  # the supervisor stays root: it re-reads keys on reload
        assert f"workers run as {USER}" in proc.log()
        # A reload re-reads the keys (as root) and the new workers drop again.
        old = _children(proc.proc.pid)
        proc.proc.send_signal(signal.SIGHUP)
        until(lambda: not old & _children(proc.proc.pid) and len(_children(proc.proc.pid)) == 2, 10,
              "new workers")
        assert all(_ids(w)[0] == system_user.pw_uid for w in _children(proc.proc.pid))
        assert _sign(proc.spec) == ["pass", "pass"]
        # Stopping still removes the socket (the supervisor does it).
        assert proc.stop() == 0
        assert not proc.socket_path.exists()
    finally:
        proc.close()


def test_a_group_of_its_own(system_user: pwd.struct_passwd) -> None:
    proc = MailwardenProcess(config=f'[milter]\nworkers = 1\nuser = "{USER}"\ngroup = "nogroup"\n', user=None)
    try:
        proc.start()
        assert proc.proc is not None
        until(lambda: len(_children(proc.proc.pid)) == 1, 10, "the worker")  # type: ignore[union-attr]
        (worker,) = _children(proc.proc.pid)
        ids = (system_user.pw_uid, grp.getgrnam("nogroup").gr_gid)
        until(lambda: _ids(worker)[:2] == ids, 10, "the worker to run as the user and group")
    finally:
        proc.close()


def test_user_root_must_be_written_out(tmp_path: Path) -> None:
    proc = MailwardenProcess(config='[milter]\nworkers = 1\nuser = "root"\n', user=None)
    try:
        proc.start()
        assert proc.proc is not None
        until(lambda: len(_children(proc.proc.pid)) == 1, 10, "the worker")  # type: ignore[union-attr]
        assert all(_ids(w)[0] == 0 for w in _children(proc.proc.pid))
        assert 'running as root: [milter] user = "root"' in proc.log()
    finally:
        proc.close()


@pytest.mark.parametrize(("setting", "message"), [
    ('user = "no-such-user-mw"', "mailwarden: [milter] user 'no-such-user-mw' does not exist: create it"),
    (f'user = "{USER}"\ngroup = "no-such-group-mw"',
     "mailwarden: [milter] group 'no-such-group-mw' does not exist"),
    ('user = ""', "milter.user: must name a user"),
])
def test_started_as_root_without_a_usable_user_it_refuses(
        system_user: pwd.struct_passwd, tmp_path: Path, setting: str, message: str) -> None:
    config = tmp_path / "mw.toml"
    config.write_text(f"[milter]\n{setting}\n")
    res = subprocess.run([sys.executable, "-m", "mailwarden", "serve", "--socket", f"unix:{tmp_path}/s",
                          "--config", str(config), "--zone", "/dev/null"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 2, res
    assert message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "s").exists()  # refused before the socket was made
