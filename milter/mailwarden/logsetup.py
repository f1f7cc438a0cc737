"""Logging: one summary line per message, keyed by the Postfix queue id, like Postfix's own logs."""

from __future__ import annotations

import logging
import sys

LOG = logging.getLogger("mailwarden")


def setup(level: str = "info", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s mailwarden[%(process)d]: %(message)s", "%b %d %H:%M:%S"))
    root = logging.getLogger("mailwarden")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
