"""Subcommands of this feature, registered on the main `mailwarden` parser."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this feature's subcommands; each sets `func` (args -> exit status) as its default."""
