"""The files a wheel carries beside the code: the default rule packs, the annotated example config,
the systemd unit and the Postfix snippets.

Their one source is the repository (rules/, contrib/): setup.py copies them into the wheel as
mailwarden/data/ at build time, using SOURCES below, and a test checks the wheel's copies are the
same. Installed from a wheel, they are read from mailwarden/data/; from a checkout (or an editable
install), straight from the repository. This module uses only the standard library: setup.py loads
it before anything is installed.
"""

from __future__ import annotations

from pathlib import Path

# Name under mailwarden/data/ -> path in the repository.
SOURCES = {
    "rules": "rules",
    "mailwarden.toml": "contrib/mailwarden.toml",
    "systemd": "contrib/systemd",
    "postfix": "contrib/postfix",
}

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]


def in_wheel(name: str) -> Path | None:
    """The wheel's copy of `name` (a key of SOURCES), or None when not installed from a wheel."""
    candidate = _PACKAGE / "data" / name
    return candidate if candidate.exists() else None


def in_checkout(name: str) -> Path | None:
    """The repository's `name`, or None when mailwarden does not run from a checkout."""
    candidate = _CHECKOUT / SOURCES[name]
    return candidate if (_CHECKOUT / "pyproject.toml").is_file() and candidate.exists() else None


def path(name: str) -> Path | None:
    """Where the packaged file or folder `name` is: the wheel's copy, else the checkout's."""
    return in_wheel(name) or in_checkout(name)


def is_packaged_rules(directory: Path) -> bool:
    """Whether `directory` holds the rule packs that come with mailwarden."""
    packs = path("rules")
    return packs is not None and directory.resolve() == packs.resolve()
