"""The live rule set, swapped whole when the files on disk change.

A new set is compiled completely before it replaces the old one; a set with errors is not
installed (the old one keeps running and the errors are logged with file:line). Stages read
`current` once per message and keep that object, so a message in flight finishes with the set it
started with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mailwarden.rules.loader import RuleSet, current_stamps, load_rules
from mailwarden.rules.table import Problem

LOG = logging.getLogger("mailwarden.rules")


def errors_of(ruleset: RuleSet) -> list[Problem]:
    """Problems that skipped a rule: these stop the service and block a reload."""
    return [p for p in ruleset.problems if p.skipped]


class RuleSetHolder:
    def __init__(
        self,
        dirs: Sequence[Path],
        timeout: float = 0.1,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dirs = tuple(dirs)
        self.timeout = timeout
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._reloading = threading.Event()
        self.current: RuleSet = load_rules(self.dirs, timeout)
        self._last_check = clock()
        self._failed_stamps: dict[str, tuple[int, int]] | None = None
        self.generation = 1
        self._unreadable = ""  # the last error of the change check, logged once
        for p in self.current.problems:
            if not p.skipped:
                LOG.warning("rules: %s", p)

    def changed(self) -> bool:
        stamps = current_stamps(self.dirs)
        return stamps != self.current.stamps and stamps != self._failed_stamps

    def reload(self) -> list[Problem]:
        """Compile the files now; install them only when error-free. Returns the errors."""
        with self._lock:
            candidate = load_rules(self.dirs, self.timeout)
            errors = errors_of(candidate)
            if errors:
                self._failed_stamps = candidate.stamps
                for p in errors:
                    LOG.error("rules: reload refused, keeping the previous rules: %s", p)
                return errors
            self.current = candidate
            self._failed_stamps = None
            self.generation += 1
            LOG.info("rules: reloaded %d rules from %d files", len(candidate), len(candidate.stamps))
            return []

    def maybe_reload(self) -> None:
        """Poll the mtimes at most every `interval` seconds; cheap enough to call per message."""
        if self.interval <= 0:
            return
        now = self._clock()
        if now - self._last_check < self.interval:
            return
        self._last_check = now
        try:
            changed = self.changed()
        except OSError as exc:
            # E.g. a rules folder the worker's user may not read after the privilege drop: keep
            # the packs loaded at start (SIGHUP reloads them as root), never fail the message.
            if str(exc) != self._unreadable:
                self._unreadable = str(exc)
                LOG.warning("rules: cannot check the packs for changes, keeping the loaded ones: %s", exc)
            return
        if changed and not self._reloading.is_set():
            # Compile beside the traffic: messages keep the current set until the swap.
            self._reloading.set()
            threading.Thread(target=self._background_reload, name="rules-reload", daemon=True).start()

    def _background_reload(self) -> None:
        try:
            self.reload()
        except Exception:  # a reload problem must never reach a message
            LOG.exception("rules: reload failed")
        finally:
            self._reloading.clear()
