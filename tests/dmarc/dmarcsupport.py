"""Helpers for the SPF/DMARC tests (transactions and runtimes: tests/support/builders.py)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "dmarc"
