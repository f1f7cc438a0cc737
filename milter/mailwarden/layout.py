"""`mailwarden init`: lay out /etc/mailwarden and the systemd unit from the packaged files.

Nothing that exists is overwritten: a second run, or a run after an upgrade, only adds what is
missing. `prefix` is a staging root (as DESTDIR): the files written still name /etc/mailwarden.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from mailwarden import packaged
from mailwarden.errors import CommandFailed

ETC = Path("etc/mailwarden")
UNITS = Path("etc/systemd/system")
UNIT = UNITS / "mailwarden.service"
# The path the packaged unit names; replaced by this installation's own command.
UNIT_COMMAND = "/opt/mailwarden/.venv/bin/mailwarden"


def command() -> str:
    """How this installation's `mailwarden` is started: its console script beside the Python."""
    script = Path(sys.executable).parent / "mailwarden"
    return str(script) if script.is_file() else f"{sys.executable} -m mailwarden"


def lay_out(prefix: Path) -> Iterator[tuple[str, Path]]:
    """Create what is missing; yield ("wrote" | "kept", path) for each file and folder."""
    etc = prefix / ETC
    yield _mkdir(etc, 0o755)
    yield _file(etc / "mailwarden.toml", _packaged("mailwarden.toml").read_text(), 0o640)
    yield _mkdir(etc / "keys", 0o700)
    rules = _packaged("rules")
    yield _mkdir(etc / "rules", 0o755)
    for source in sorted(rules.rglob("*")):
        target = etc / "rules" / source.relative_to(rules)
        if source.is_dir():
            yield _mkdir(target, 0o755)
        elif source.name != ".gitkeep":
            yield _file(target, source.read_text(), 0o644)
    yield _mkdir(prefix / UNITS, 0o755)
    for source in sorted(_packaged("systemd").iterdir()):  # the service, and the reports timer
        unit = source.read_text().replace(UNIT_COMMAND, command())
        yield _file(prefix / UNITS / source.name, unit, 0o644)


def _packaged(name: str) -> Path:
    found = packaged.path(name)
    if found is None:
        raise CommandFailed(f"init: this installation has no packaged {name} (reinstall from the wheel)")
    return found


def _mkdir(path: Path, mode: int) -> tuple[str, Path]:
    if path.is_dir():
        return "kept", path
    try:
        path.mkdir(mode=mode, parents=True)
        path.chmod(mode)  # not subject to the umask
    except OSError as exc:
        raise CommandFailed(f"init: {path}: {exc.strerror}") from None
    return "wrote", path


def _file(path: Path, text: str, mode: int) -> tuple[str, Path]:
    try:
        with open(path, "x", encoding="utf-8") as f:
            path.chmod(mode)
            f.write(text)
    except FileExistsError:
        return "kept", path
    except OSError as exc:
        raise CommandFailed(f"init: {path}: {exc.strerror}") from None
    return "wrote", path
