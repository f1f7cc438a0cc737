"""Exceptions raised at the edges, each with a message a postmaster can act on."""

from __future__ import annotations


class MailwardenError(Exception):
    """Base class for every error mailwarden raises on purpose."""


class ConfigError(MailwardenError):
    """The configuration is invalid; `problems` lists every error as 'key.path: reason'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DnsTempError(MailwardenError):
    """A DNS lookup failed temporarily (timeout, SERVFAIL): never to be read as a fail."""

    def __init__(self, name: str, rdtype: str, reason: str) -> None:
        self.name = name
        self.rdtype = rdtype
        self.reason = reason
        super().__init__(f"DNS {rdtype} {name}: {reason}")


class InputError(MailwardenError):
    """A message or file could not be read or parsed."""


class CommandFailed(MailwardenError):
    """A command ran and failed (a file it had to write, a socket it had to open): exit status 1.
    Every other MailwardenError is a usage or configuration error: exit status 2."""
