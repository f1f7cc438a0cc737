"""Noticing changed rule packs, for the supervisor: one reload point that every worker follows.

The supervisor asks every `[rules] reload_interval` seconds and, on a change, reloads as SIGHUP
does: new workers on the new packs, the old ones finish their messages. Workers never reload on
their own, so no two of them judge the same message by different packs (issue 17).

A change counts only once it looks the same at two checks in a row: an editor that rewrites a
file in place (emptied, then written) must not be caught half-way and installed as no rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from mailwarden.rules.loader import current_stamps

LOG = logging.getLogger("mailwarden.rules")

Stamps = dict[str, tuple[int, int]]


class PackWatch:
    def __init__(self, dirs: Callable[[], Sequence[Path]]) -> None:
        """`dirs`: the pack directories of the configuration in force (a reload may change them)."""
        self._dirs = dirs
        self._unreadable = ""  # the last error of a check, logged once
        self._baseline: Stamps | None = self._stamps()
        self._pending: Stamps | None = None

    def rebase(self) -> None:
        """Before any reload (SIGHUP too): the files as they are now become the ones in force,
        so a set the reload refuses is not tried again until it changes."""
        self._baseline, self._pending = self._stamps(), None

    def changed(self) -> bool:
        """True once for each settled change since the last reload."""
        stamps = self._stamps()
        if stamps is None or stamps == self._baseline:
            self._pending = None
            return False
        if stamps != self._pending:
            self._pending = stamps  # seen once: wait for the next check to see it settled
            return False
        self._baseline, self._pending = stamps, None
        return True

    def _stamps(self) -> Stamps | None:
        try:
            stamps = current_stamps(self._dirs())
        except OSError as exc:
            if str(exc) != self._unreadable:
                self._unreadable = str(exc)
                LOG.warning("rules: cannot check the packs for changes, keeping the loaded ones: %s", exc)
            return None
        self._unreadable = ""
        return stamps
