"""`mailwarden serve` variants for the reliability tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.postfix import MailwardenProcess


class LiveDnsMailwarden(MailwardenProcess):
    """With its live resolver: no --zone, so `[dns] nameservers` in the config is asked."""

    def command(self) -> list[str]:
        cmd = super().command()
        out: list[str] = []
        skip = False
        for arg in cmd:
            if skip:
                skip = False
            elif arg == "--zone":
                skip = True
            else:
                out.append(arg)
        return out


@contextmanager
def serving(kind: type[MailwardenProcess] = MailwardenProcess, **kw: Any) -> Iterator[MailwardenProcess]:
    proc = kind(**kw)
    try:
        yield proc.start()
    finally:
        proc.close()
