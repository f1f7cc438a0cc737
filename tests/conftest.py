"""Shared fixtures: `mailwarden serve` subprocesses, milter-protocol clients, a private Postfix.

Markers: ``postfix`` (added by itself to every test that uses a Postfix fixture) and ``root``
(needs root: other users, setpriv, chown). ``make unit`` runs the rest, as any user.

Fixtures (import helpers from ``tests.support.milterclient`` / ``tests.support.postfix``):

- ``mailwarden_factory`` (function): ``start(config=None, *, zone_text="", zones=(),
  socket_path=None, args=(), env=None, script=None) -> MailwardenProcess``. ``config`` is TOML
  text. Runs ``python -m mailwarden serve --socket unix:PATH --config F --zone F`` (an empty zone
  file by default: no live DNS in tests), waits until the socket answers, stops every started
  process (SIGTERM, then SIGKILL) at teardown. ``proc.spec`` is the socket spec, ``proc.log()``
  its output, ``proc.stop()`` stops it early.
- ``mailwarden`` (function): one ``mailwarden serve`` with the embedded defaults.
- ``milter`` (function): a ``MilterClient`` connected to ``mailwarden`` after OPTNEG (not yet
  CONNECT/HELO: ``milter.send_message(raw, ...)`` does those on first use).
- ``postfix_instance`` (session): a started ``PostfixInstance`` whose smtpd_milters is
  ``unix:<base>/milter/mailwarden.sock`` (``.milter_path``), ``hopcount_limit = 100`` so
  mailwarden's own hopcount check is the one that fires. Skips when /usr/sbin/postfix is missing
  or not root.
- ``postfix`` (function): the same instance with the sink cleared. Mail to its inbound,
  submission and originating listeners needs ``postfix_mailwarden`` too (without a milter on the
  socket Postfix tempfails: milter_default_action = tempfail). Use ``unique_address()`` recipients.
- ``postfix_factory`` (function): ``start(main={...}, milter=None) -> PostfixInstance`` for a
  test that needs its own instance (about 2 s); closed at teardown. Prefer ``postfix`` with
  ``with postfix.settings(key=value): ...`` (a reload, ~1 s each way) or the alt listener.
- ``postfix_mailwarden`` (function): ``mailwarden serve`` with the embedded defaults on the
  instance's milter socket, shared by the session (restarted if a test stopped it). For another
  config, start your own with ``mailwarden_factory(config, socket_path=postfix.alt_milter_path)``
  and submit to ``postfix.alt`` (one alt socket: a test owns it while it runs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.milterclient import MilterClient  # noqa: E402
from tests.support.postfix import MailwardenProcess, PostfixInstance, postfix_available  # noqa: E402

POSTFIX_FIXTURES = {"postfix_instance", "postfix_factory"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a real Postfix is marked `postfix`, whether or not its module says so:
    `make unit` (-m "not postfix and not root") then leaves it out."""
    for item in items:
        if POSTFIX_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postfix)


@pytest.fixture
def mailwarden_factory() -> Iterator[Callable[..., MailwardenProcess]]:
    procs: list[MailwardenProcess] = []

    def start(config: str | None = None, **kw: object) -> MailwardenProcess:
        proc = MailwardenProcess(config=config, **kw)  # type: ignore[arg-type]
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.close()


@pytest.fixture
def mailwarden(mailwarden_factory: Callable[..., MailwardenProcess]) -> MailwardenProcess:
    return mailwarden_factory()


@pytest.fixture
def milter(mailwarden: MailwardenProcess) -> Iterator[MilterClient]:
    client = MilterClient.connect(mailwarden.spec)
    client.optneg()
    yield client
    client.close()


@pytest.fixture(scope="session")
def postfix_instance() -> Iterator[PostfixInstance]:
    if not postfix_available():
        pytest.skip("needs /usr/sbin/postfix and root")
    inst = PostfixInstance(main={"hopcount_limit": "100"})
    try:
        inst.start()
        yield inst
    finally:
        inst.close()


@pytest.fixture
def postfix(postfix_instance: PostfixInstance) -> PostfixInstance:
    postfix_instance.sink.clear()
    return postfix_instance


@pytest.fixture
def postfix_factory() -> Iterator[Callable[..., PostfixInstance]]:
    if not postfix_available():
        pytest.skip("needs /usr/sbin/postfix and root")
    made: list[PostfixInstance] = []

    def start(main: dict[str, str] | None = None, milter: str | None = None) -> PostfixInstance:
        inst = PostfixInstance(milter=milter, main={"hopcount_limit": "100", **(main or {})})
        made.append(inst)
        inst.start()
        return inst

    yield start
    for inst in made:
        inst.close()


@pytest.fixture(scope="session")
def _postfix_mailwarden_session(postfix_instance: PostfixInstance) -> Iterator[MailwardenProcess]:
    proc = MailwardenProcess(socket_path=postfix_instance.milter_path)
    try:
        yield proc.start()
    finally:
        proc.close()


@pytest.fixture
def postfix_mailwarden(_postfix_mailwarden_session: MailwardenProcess) -> MailwardenProcess:
    if not _postfix_mailwarden_session.running:
        _postfix_mailwarden_session.start()
    return _postfix_mailwarden_session
