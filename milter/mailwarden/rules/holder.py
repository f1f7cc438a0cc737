"""The rule set a runtime's stages share, swapped whole by `reload`.

A new set is compiled completely before it replaces the old one; a set with errors is not
installed (the old one keeps running and the errors are logged with file:line). Stages read
`current` once per message and keep that object, so a message in flight finishes with the set it
started with. The service reloads packs through the supervisor (rules/watch.py, SIGHUP), which
builds a whole new runtime; workers never poll on their own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from mailwarden.rules.loader import RuleSet, current_stamps, load_rules
from mailwarden.rules.table import Problem

LOG = logging.getLogger("mailwarden.rules")


def errors_of(ruleset: RuleSet) -> list[Problem]:
    """Problems that skipped a rule: these stop the service and block a reload."""
    return [p for p in ruleset.problems if p.skipped]


class RuleSetHolder:
    def __init__(self, dirs: Sequence[Path], timeout: float = 0.1) -> None:
        self.dirs = tuple(dirs)
        self.timeout = timeout
        self._lock = threading.Lock()
        self.current: RuleSet = load_rules(self.dirs, timeout)
        self._failed_stamps: dict[str, tuple[int, int]] | None = None
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
            LOG.info("rules: reloaded %d rules from %d files", len(candidate), len(candidate.stamps))
            return []
