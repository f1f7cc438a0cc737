"""Logging: one summary line per message, keyed by the Postfix queue id, like Postfix's own logs."""

from __future__ import annotations

import logging
import sys

LOG = logging.getLogger("mailwarden")


def setup(level: str = "info", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    fmt = "%(asctime)s mailwarden[%(process)d]: %(message)s"
    handler.setFormatter(logging.Formatter(fmt, "%b %d %H:%M:%S"))
    root = logging.getLogger("mailwarden")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
