"""require_safe_keys checks the directories above a key too, as OpenDKIM's RequireSafeKeys does:
nobody but root and us may be able to replace the key file through any of them."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwarden.dkim.keys import KeyError_, load_private_key

KEY = Path(__file__).resolve().parent.parent / "data" / "dkim" / "ed.key"

def needs_root(test: Callable[..., None]) -> Callable[..., None]:
    """chown to other users needs root."""
    return pytest.mark.root(pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")(test))


def key_in(directory: Path, mode: int) -> Path:
    """A copy of the test key (mode 0600) in `directory`, which then gets `mode`."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "k.key"
    shutil.copy(KEY, target)
    target.chmod(0o600)
    directory.chmod(mode)
    return target


def test_private_directory_below_sticky_tmp_is_safe(tmp_path: Path) -> None:
    assert load_private_key(key_in(tmp_path / "keys", 0o700)).algorithm == "ed25519-sha256"


def test_sticky_world_writable_directory_is_safe_for_our_own_files(tmp_path: Path) -> None:
    assert load_private_key(key_in(tmp_path / "spool", 0o1777)).algorithm == "ed25519-sha256"


@pytest.mark.parametrize("mode", [0o777, 0o757, 0o703])
def test_world_writable_directory_is_refused(tmp_path: Path, mode: int) -> None:
    path = key_in(tmp_path / "open", mode)
    with pytest.raises(KeyError_, match=f"directory {tmp_path / 'open'} is writable by every user"):
        load_private_key(path)
    assert load_private_key(path, require_safe=False).algorithm == "ed25519-sha256"


def test_world_writable_directory_further_up_is_refused(tmp_path: Path) -> None:
    path = key_in(tmp_path / "open" / "deeper" / "keys", 0o700)
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(KeyError_, match="open is writable by every user"):
        load_private_key(path)


def test_a_symlink_is_checked_where_it_leads(tmp_path: Path) -> None:
    path = key_in(tmp_path / "open", 0o777)
    (tmp_path / "safe").mkdir(mode=0o700)
    (tmp_path / "safe" / "k.key").symlink_to(path)
    with pytest.raises(KeyError_, match="writable by every user"):
        load_private_key(tmp_path / "safe" / "k.key")


@needs_root
def test_group_writable_directory_is_safe_only_for_a_group_of_root_and_us(tmp_path: Path) -> None:
    shared = grp.getgrgid(pwd.getpwnam("nobody").pw_gid)  # nobody's own group: someone else is in it
    path = key_in(tmp_path / "grouped", 0o770)
    os.chown(tmp_path / "grouped", 0, shared.gr_gid)
    with pytest.raises(KeyError_, match=f"writable by group {shared.gr_gid}, which other users are in"):
        load_private_key(path)
    os.chown(tmp_path / "grouped", 0, 0)
    assert load_private_key(path).algorithm == "ed25519-sha256"


@needs_root
def test_directory_another_user_owns_and_can_write_is_refused(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    path = key_in(tmp_path / "theirs", 0o755)
    os.chown(tmp_path / "theirs", nobody, 0)
    with pytest.raises(KeyError_, match=f"owned and writable by uid {nobody}"):
        load_private_key(path)
    (tmp_path / "theirs").chmod(0o555)  # theirs, but not writable by them: OpenDKIM accepts it too
    assert load_private_key(path).algorithm == "ed25519-sha256"
