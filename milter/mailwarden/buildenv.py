"""What feature packages get to build their stages (the composition root hands it to them).

Its own module, so that the features never import the composition root (`bootstrap`), which
imports them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from mailwarden.config import Config
from mailwarden.core.ports import Clock, Random, Resolver

T = TypeVar("T")


@dataclass(frozen=True)
class BuildEnv:
    config: Config
    resolver: Resolver
    authserv_id: str
    rules_dir: Path | None
    clock: Clock = time.time
    random: Random = field(default=random.random)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def shared(self, key: str, make: Callable[[BuildEnv], T]) -> T:
        """One object for several stages of one build (e.g. the rule set the rule stages share)."""
        if key not in self._shared:
            self._shared[key] = make(self)
        return cast(T, self._shared[key])
