"""[rules]: header_checks-compatible rule packs (rules/<class>/NN-name.pcre|.regexp)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailwarden.config.loader import FilePath


@dataclass(frozen=True)
class RulesSection:
    enabled: bool = True
    """Run the rule packs at all."""
    default_packs: bool = True
    """Load the packs shipped in the repository's rules/ (or the --rules-dir given to the service)."""
    dirs: tuple[FilePath, ...] = ()
    """More pack directories, each with the class subfolders; loaded after the default packs.
    Relative paths are relative to the config file."""
    timeout: float = 0.1
    """Seconds one regex may run on one header or line; past it the rule counts as not matching."""
    on_timeout: Literal["continue", "tempfail"] = "continue"
    """What a regex timeout does to the message: nothing more (logged), or a 451 tempfail."""
    message_budget: float = 1.0
    """Seconds all rules together may spend on one message; past it rule matching stops for that
    message (logged with the rule that took the time; a tempfail when on_timeout = "tempfail")."""
    body_size_limit: int = 51200
    """body_checks look at this many bytes of each MIME part (Postfix's body_checks_size_limit)."""
    line_length_limit: int = 2048
    """Longer body lines are checked in pieces of this size (Postfix's line_length_limit)."""
    reload_interval: float = 5.0
    """Seconds between the service's checks of the rule files (mtime and size); a change seen the
    same at two checks in a row reloads as SIGHUP does, every worker at once. 0: SIGHUP only."""

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if not 0 < self.timeout <= 10:
            problems.append(("timeout", "must be in (0, 10] seconds"))
        if not 0 < self.message_budget <= 600:
            problems.append(("message_budget", "must be in (0, 600] seconds"))
        if self.body_size_limit < 0:
            problems.append(("body_size_limit", "must not be negative"))
        if self.line_length_limit < 1:
            problems.append(("line_length_limit", "must be positive"))
        if self.reload_interval < 0:
            problems.append(("reload_interval", "must not be negative"))
        return problems
