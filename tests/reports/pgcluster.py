"""A private PostgreSQL cluster for tests: initdb and pg_ctl (Debian's postgresql package) in a
temporary directory, run as the unprivileged user postgres, listening on a unix socket only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def available() -> str:
    """Why a cluster cannot be started here ("" when it can)."""
    if binaries() is None:
        return "PostgreSQL server binaries not installed (Debian package postgresql)"
    if os.geteuid() != 0:
        return "needs root, to run the cluster as user postgres"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no user postgres"
    return ""


class PgCluster:
    def __init__(self) -> None:
        bindir = binaries()
        assert bindir is not None
        self.bin = bindir
        self.base = Path(tempfile.mkdtemp(prefix="mw-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(self.base, user.pw_uid, user.pw_gid)
        self.data = self.base / "data"
        self.socket_dir = self.base

    def _run(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True,
                       timeout=120, cwd=self.base)

    def start(self) -> PgCluster:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-w",
                  "-o", f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off", "start")
        return self

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def createdb(self, name: str) -> str:
        self._run(str(self.bin / "createdb"), "-h", str(self.socket_dir), "-U", "postgres", name)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@/{name}?host={self.socket_dir}"

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
