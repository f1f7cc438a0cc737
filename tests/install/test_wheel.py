"""mailwarden installed as a user installs it: the wheel built from a copy of the sources, installed
into a fresh venv outside the checkout, run from a directory that is not the checkout.

The fresh venv gets the wheel alone (pip --no-deps, no index); its dependencies (pymilter is built
against libmilter, which takes a compiler and minutes) come from the checkout's venv through a
path entry, which adds their folder but not the editable install of the checkout's mailwarden.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.milterclient import MilterClient

from mailwarden import packaged
from mailwarden.bootstrap import SYSTEM_RULES_DIR

REPO = Path(__file__).resolve().parents[2]
# What a source tree for the build needs (as an sdist would carry it).
SOURCE_ENTRIES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "milter", "rules", "contrib")
OUTBOUND = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hello\r\nUser-Agent: Mutt/2.2\r\n"
            b"X-Mailer: Thunderbird\r\nX-Originating-IP: [198.51.100.7]\r\n\r\nhi\r\n")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site: Path

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "mailwarden"), *args], capture_output=True,
                              text=True, timeout=120, cwd=cwd, env=_clean_env())


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "JOURNAL_STREAM")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for entry in SOURCE_ENTRIES:
        from_ = REPO / entry
        if from_.is_dir():
            shutil.copytree(from_, src / entry, ignore=ignore)
        else:
            shutil.copy2(from_, src / entry)
    dist = base / "dist"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
                   check=True, capture_output=True, cwd=base)
    (wheel,) = dist.glob("mailwarden-*.whl")
    venv = base / "venv"
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, cwd=base)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(wheel, venv, site)


def test_the_wheel_carries_the_repository_files(installed: Installed, tmp_path: Path) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        whl.extractall(tmp_path)
    data = tmp_path / "mailwarden" / "data"
    for name, source in packaged.SOURCES.items():
        ours, theirs = REPO / source, data / name
        if ours.is_dir():
            files = sorted(p.relative_to(ours) for p in ours.rglob("*")
                           if p.is_file() and p.name != ".gitkeep")
            assert files == sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file()), name
            for f in files:
                assert filecmp.cmp(ours / f, theirs / f, shallow=False), f"{name}/{f} differs"
        else:
            assert filecmp.cmp(ours, theirs, shallow=False), f"{name} differs from {source}"


def test_installed_serve_strips_outbound_headers_with_the_packaged_packs(
    installed: Installed, tmp_path: Path
) -> None:
    if SYSTEM_RULES_DIR.is_dir():
        pytest.skip(f"{SYSTEM_RULES_DIR} exists here and would be the rules in force")
    where = subprocess.run([str(installed.venv / "bin" / "python"), "-c", "import mailwarden; "
                            "print(mailwarden.__file__)"], capture_output=True, text=True, cwd=tmp_path,
                           env=_clean_env())
    assert where.stdout.startswith(str(installed.site)), where  # the wheel's, not the checkout's
    (tmp_path / "empty.zone").write_text("")
    user = 'user = "root"\n' if os.geteuid() == 0 else ""  # tests run as root; a host has a user for it
    (tmp_path / "mw.toml").write_text(f'[milter]\nworkers = 1\n{user}[log]\ntarget = "stderr"\n'
                                      '[dns]\nzones = ["empty.zone"]\n[reports]\nstore = ""\n')
    spec = f"unix:{tmp_path}/milter.sock"
    with _serving(installed, tmp_path, spec) as log:
        with MilterClient.connect(spec) as mc:
            mc.optneg()
            reply = mc.send_message(OUTBOUND, mail_from="<alice@example.com>", rcpts=["<bob@example.org>"],
                                    auth="alice")
        deleted = {m.name.lower() for m in reply.header_mods() if m.is_delete}
        assert {"user-agent", "x-mailer", "x-originating-ip"} <= deleted, reply
        start = next(line for line in log().splitlines() if "starting:" in line)
    packs = installed.site / "mailwarden" / "data" / "rules"
    assert f"rules packaged packs {packs};" in start, start
    assert f"config {tmp_path}/mw.toml;" in start and "workers 1;" in start, start


def test_installed_init_lays_out_etc_and_overwrites_nothing(installed: Installed, tmp_path: Path) -> None:
    first = installed.run("init", "--prefix", str(tmp_path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    etc = tmp_path / "etc" / "mailwarden"
    assert f"wrote {etc}/mailwarden.toml" in first.stdout
    assert (etc / "keys").stat().st_mode & 0o777 == 0o700
    packs = installed.site / "mailwarden" / "data" / "rules"
    assert (etc / "rules/outbound_header_checks/00-privacy.pcre").read_bytes() == \
        (packs / "outbound_header_checks/00-privacy.pcre").read_bytes()
    unit = (tmp_path / "etc/systemd/system/mailwarden.service").read_text()
    assert f"ExecStart={installed.venv}/bin/mailwarden serve --config /etc/mailwarden/mailwarden.toml" in unit
    timer = (tmp_path / "etc/systemd/system/mailwarden-reports.service").read_text()
    assert f"ExecStart={installed.venv}/bin/mailwarden reports send" in timer
    check = installed.run("check-config", "--config", str(etc / "mailwarden.toml"), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    (etc / "mailwarden.toml").write_text("# mine\n")
    again = installed.run("init", "--prefix", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 0 and "wrote" not in again.stdout, again.stdout
    assert (etc / "mailwarden.toml").read_text() == "# mine\n"


@contextlib.contextmanager
def _serving(installed: Installed, cwd: Path, spec: str) -> Iterator[Callable[[], str]]:
    """`mailwarden serve` of the installed venv while the block runs; yields its log reader."""
    log_path = cwd / "serve.log"
    cmd = [str(installed.venv / "bin" / "mailwarden"), "serve", "-c", "mw.toml", "--socket", spec]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_clean_env())
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                with MilterClient.connect(spec, timeout=5) as mc:
                    mc.optneg()
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield log_path.read_text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
