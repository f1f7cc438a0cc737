"""The fault matrix through a real Postfix (issue 17): for each fault, mail sent by a client that
retries as an MTA does is delivered exactly once, or refused with a reply the client saw; none
is lost or duplicated. Counted at the sink."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.reliability.procs import children
from tests.reliability.retrying import Sent, exactly_once_or_refused, send
from tests.support.milterclient import MilterClient
from tests.support.postfix import REMOTE_CLIENT, MailwardenProcess, PostfixInstance
from tests.support.processes import until

pytestmark = pytest.mark.postfix

HERE = Path(__file__).resolve().parent
PASS_SPF = f'"v=spf1 ip4:{REMOTE_CLIENT} -all"'
# One domain per fault; every domain's DMARC policy is p=reject, so a DNS failure read as a
# fail would reject the message.
ZONE = f"""$TTL 300
dmarc-timeout.test.      IN TXT {PASS_SPF}
;! TIMEOUT _dmarc.dmarc-timeout.test. TXT
dmarc-servfail.test.     IN TXT {PASS_SPF}
;! SERVFAIL _dmarc.dmarc-servfail.test.
spf-timeout.test.        IN MX 10 mx.spf-timeout.test.
_dmarc.spf-timeout.test. IN TXT "v=DMARC1; p=reject"
;! TIMEOUT spf-timeout.test. TXT
spf-servfail.test.       IN MX 10 mx.spf-servfail.test.
_dmarc.spf-servfail.test. IN TXT "v=DMARC1; p=reject"
;! SERVFAIL spf-servfail.test. TXT
inc-timeout.test.        IN TXT "v=spf1 include:spf.inc-timeout.test -all"
_dmarc.inc-timeout.test. IN TXT "v=DMARC1; p=reject"
;! TIMEOUT spf.inc-timeout.test. TXT
inc-servfail.test.       IN TXT "v=spf1 include:spf.inc-servfail.test -all"
_dmarc.inc-servfail.test. IN TXT "v=DMARC1; p=reject"
;! SERVFAIL spf.inc-servfail.test.
key-timeout.test.        IN TXT "v=spf1 -all"
_dmarc.key-timeout.test. IN TXT "v=DMARC1; p=reject"
;! TIMEOUT sel._domainkey.key-timeout.test. TXT
key-servfail.test.       IN TXT "v=spf1 -all"
_dmarc.key-servfail.test. IN TXT "v=DMARC1; p=reject"
;! SERVFAIL sel._domainkey.key-servfail.test.
good.test.               IN TXT {PASS_SPF}
_dmarc.good.test.        IN TXT "v=DMARC1; p=reject"
"""
CONFIG = '[policy]\nauthserv_id = "mx.ci.test"\n'


def signature(domain: str) -> str:
    return (f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=sel;"
            " h=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n")


class FaultServe(MailwardenProcess):
    """fault_serve.py (stages that raise, hang or crawl) with the given zone."""

    def __init__(self, socket_path: Path, tmp: Path, config: str = CONFIG, **kw: object) -> None:
        self.flag = tmp / "hang.flag"
        super().__init__(socket_path, config=config, script=HERE / "fault_serve.py",
                         env={"MW_HANG_FLAG": str(self.flag), **kw.pop("env", {})},  # type: ignore[dict-item]
                         **kw)  # type: ignore[arg-type]

    def workers(self) -> list[int]:
        assert self.proc is not None
        return children(self.proc.pid)


@pytest.fixture
def served(postfix: PostfixInstance, tmp_path: Path) -> Iterator[Callable[..., FaultServe]]:
    procs: list[FaultServe] = []

    def start(**kw: object) -> FaultServe:
        proc = FaultServe(postfix.alt_milter_path, tmp_path, **kw)  # type: ignore[arg-type]
        procs.append(proc)
        proc.start()
        return proc

    yield start
    for p in procs:
        p.close()


def good_still_delivered(postfix: PostfixInstance) -> None:
    sent = send(postfix, postfix.alt, "fine", from_domain="good.test")
    assert exactly_once_or_refused(postfix, sent) == "delivered"


@pytest.mark.parametrize("domain", ["dmarc-timeout", "dmarc-servfail", "spf-timeout", "spf-servfail",
                                    "inc-timeout", "inc-servfail", "key-timeout", "key-servfail"])
def test_dns_fault(postfix: PostfixInstance, mailwarden_factory: Callable[..., MailwardenProcess],
                   domain: str) -> None:
    mailwarden_factory(CONFIG, zone_text=ZONE, socket_path=postfix.alt_milter_path)
    extra = signature(f"{domain}.test") if domain.startswith("key") else ""
    sent = send(postfix, postfix.alt, "dns fault", from_domain=f"{domain}.test", extra=extra, tries=2)
    exactly_once_or_refused(postfix, sent)
    # A DNS failure is a temporary error, never a fail: no 5xx.
    assert not any(500 <= a.code < 600 for a in sent.attempts), [str(a) for a in sent.attempts]


def test_a_stage_that_raises(postfix: PostfixInstance, served: Callable[..., FaultServe]) -> None:
    served(zone_text=ZONE)
    sent = send(postfix, postfix.alt, "explode", from_domain="good.test", tries=2)
    assert exactly_once_or_refused(postfix, sent) == "refused"
    assert all(a.code == 451 for a in sent.attempts), [str(a) for a in sent.attempts]
    good_still_delivered(postfix)


def test_a_stage_slower_than_postfix_milter_timeouts(
    postfix_factory: Callable[..., PostfixInstance], tmp_path: Path
) -> None:
    # Its own Postfix: a reload of the shared one leaves old smtpd processes serving a while.
    postfix = postfix_factory(main={"milter_content_timeout": "2s", "milter_command_timeout": "2s"})
    proc = FaultServe(postfix.alt_milter_path, tmp_path, zone_text=ZONE)
    try:
        proc.start()
        sent = send(postfix, postfix.alt, "slow", from_domain="good.test", tries=2)
        assert exactly_once_or_refused(postfix, sent) == "refused"
        assert all(400 <= a.code < 500 for a in sent.attempts), [str(a) for a in sent.attempts]
        good_still_delivered(postfix)
    finally:
        proc.close()


def test_a_worker_killed_mid_message(postfix: PostfixInstance, served: Callable[..., FaultServe]) -> None:
    proc = served(zone_text=ZONE)

    def kill_when_hanging() -> None:
        deadline = time.monotonic() + 30
        while not proc.flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(int(proc.flag.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_hanging)
    killer.start()
    sent = send(postfix, postfix.alt, "hang", from_domain="good.test", tries=5,
                between=lambda _: time.sleep(1))
    killer.join()
    assert sent.attempts[0].code == 451, str(sent.attempts[0])  # milter_default_action = tempfail
    assert exactly_once_or_refused(postfix, sent) == "delivered"
    assert "killed by signal 9; starting another" in proc.log()


def test_the_spool_directory_removed(postfix: PostfixInstance, served: Callable[..., FaultServe],
                                     tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    # One worker: a worker's first spool file fixes its temporary directory (tempfile falls back to
    # /tmp when TMPDIR is missing at that moment), and this one must have settled on `spool`.
    config = CONFIG + "[milter]\nspool_threshold = 0\nworkers = 1\n"
    served(zone_text=ZONE, config=config, env={"TMPDIR": str(spool)})
    good_still_delivered(postfix)  # the spool works, and tempfile has settled on it
    shutil.rmtree(spool)
    sent = send(postfix, postfix.alt, "spooled", from_domain="good.test", tries=3,
                between=lambda attempt: spool.mkdir() if attempt == 2 else None)
    assert sent.attempts[0].code == 451, str(sent.attempts[0])
    assert exactly_once_or_refused(postfix, sent) == "delivered"


GOOD_PACK = "/^Subject:.*forbidden/ REJECT forbidden subject\n"
# What the postmaster meant to write next: the old rule in a group (its parenthesis unclosed, a
# line `rules check` and postmap refuse) and a new one. Installed in part, or not at all, it
# would let "forbidden" through; "banned" is refused only once a pack with it is in force.
BROKEN_PACK = "/^Subject:.*(forbidden/ REJECT forbidden subject\n/^Subject:.*banned/ REJECT banned subject\n"
FIXED_PACK = "/^Subject:.*(forbidden)/ REJECT forbidden subject\n/^Subject:.*banned/ REJECT banned subject\n"


def put(pack: Path, text: str) -> None:
    """Replaces the table whole (write beside, then rename), as a careful postmaster does."""
    beside = pack.with_name(f".{pack.name}.new")
    beside.write_text(text)
    beside.rename(pack)


def refused_with(sent: Sent, text: str) -> bool:
    return sent.refused and 500 <= sent.attempts[-1].code < 600 and text in sent.attempts[-1].text




@pytest.mark.parametrize("reload_interval", [0, 1], ids=["sighup-only", "and-polled"])
def test_a_rule_pack_broken_during_a_reload(postfix: PostfixInstance,
                                            mailwarden_factory: Callable[..., MailwardenProcess],
                                            tmp_path: Path, reload_interval: int) -> None:
    pack = tmp_path / "rules" / "header_checks" / "60-local.pcre"
    pack.parent.mkdir(parents=True)
    put(pack, GOOD_PACK)
    config = CONFIG + f"[milter]\nworkers = 2\n[rules]\nreload_interval = {reload_interval}\n"
    proc = mailwarden_factory(config, zone_text=ZONE, socket_path=postfix.alt_milter_path,
                              args=["--rules-dir", str(tmp_path / "rules")])
    assert proc.proc is not None
    until(lambda: len(children(proc.proc.pid)) == 2, 10, "two workers")  # type: ignore[union-attr]
    workers = set(children(proc.proc.pid))
    results: list[tuple[str, Sent]] = []
    stop = threading.Event()

    def sender(n: int) -> None:
        kinds = ("fine", "forbidden", "banned")
        while not stop.is_set():
            kind = kinds[(n + len(results)) % 3]
            results.append((kind, send(postfix, postfix.alt, f"{kind} {n}", from_domain="good.test")))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        until(lambda: len(results) >= 8, 60, "mail to flow")
        put(pack, BROKEN_PACK)
        if reload_interval:  # the supervisor's watch finds it on its own, settled after two checks
            until(lambda: "rule packs changed: reloading" in proc.log(), 20, "the watch to see the pack")
        else:
            proc.proc.send_signal(signal.SIGHUP)
        until(lambda: re.search("reload refused|reloaded:", proc.log()) is not None, 20, "the reload")
        flowing = len(results)
        until(lambda: len(results) >= flowing + 12, 60, "mail to flow after the refused reload")
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    # Under it all, the last good pack: "forbidden" refused with its reply, the rest delivered once.
    assert {kind for kind, _ in results} == {"fine", "forbidden", "banned"}
    for kind, sent in results:
        assert all(a.code in (250, 550) for a in sent.attempts), [str(a) for a in sent.attempts]
        outcome = exactly_once_or_refused(postfix, sent)
        if kind == "forbidden":
            assert refused_with(sent, "forbidden subject"), (kind, [str(a) for a in sent.attempts])
        else:
            assert outcome == "delivered", (kind, [str(a) for a in sent.attempts])
    # The refusal names the file and line, and nothing was replaced.
    refusal = rf"reload refused, keeping the running configuration: rules: {re.escape(str(pack))}:1:\d+: "
    assert re.search(refusal + "error in regex", proc.log()), proc.log()
    assert len(re.findall("reload refused", proc.log())) == 1  # tried once, not again until it changes
    assert set(children(proc.proc.pid)) == workers
    # The fixed pack, found by the watch or on the next SIGHUP: "banned" is refused now, "forbidden" still.
    put(pack, FIXED_PACK)
    if not reload_interval:
        proc.proc.send_signal(signal.SIGHUP)
    until(lambda: "reloaded:" in proc.log(), 20, "the reload of the fixed pack")
    until(lambda: not workers & set(children(proc.proc.pid)), 20, "the old workers to go")  # type: ignore[union-attr]
    for kind in ("banned", "forbidden"):
        sent = send(postfix, postfix.alt, kind, from_domain="good.test")
        assert exactly_once_or_refused(postfix, sent) == "refused"
        assert refused_with(sent, f"{kind} subject"), [str(a) for a in sent.attempts]
    good_still_delivered(postfix)


@pytest.fixture
def tiny_spool(tmp_path: Path) -> Iterator[Path]:
    """A private 256 KiB tmpfs, to be filled: a spool disk that runs full."""
    spool = tmp_path / "tiny-spool"
    spool.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(spool)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield spool
    finally:
        subprocess.run(["umount", "--lazy", str(spool)], check=True)


def fill(directory: Path) -> Path:
    """Writes a file in `directory` until the disk is full; returns it (unlink it to free the space)."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


@pytest.mark.root
@pytest.mark.parametrize("size", [7, 20_000], ids=["smaller-than-a-write-buffer", "larger"])
def test_the_spool_directory_full(postfix: PostfixInstance, served: Callable[..., FaultServe],
                                  tiny_spool: Path, size: int) -> None:
    # As with the removed spool: one worker, settled on `tiny_spool` while it has room.
    config = CONFIG + "[milter]\nspool_threshold = 0\nworkers = 1\n"
    proc = served(zone_text=ZONE, config=config, env={"TMPDIR": str(tiny_spool)})
    good_still_delivered(postfix)
    filler = fill(tiny_spool)
    body = (b"full spool line\r\n" * (size // 17 + 1))[:size - 2] + b"\r\n"
    sent = send(postfix, postfix.alt, "spooled", from_domain="good.test", body=body, tries=4,
                between=lambda attempt: filler.unlink() if attempt == 2 else None)
    # Temp-failed while the disk is full (Postfix keeps the message and retries), never a 5xx.
    assert [a.code for a in sent.attempts] == [451, 451, 250], [str(a) for a in sent.attempts]
    assert exactly_once_or_refused(postfix, sent) == "delivered"
    delivery = postfix.wait_delivery(sent.rcpt)
    assert delivery.headers_and_body()[1] == body  # whole, as sent
    good_still_delivered(postfix)
    # One line per temp-failed message, with the reason; no traceback.
    assert proc.log().count("No space left on device") == 2, proc.log()
    assert "Traceback" not in proc.log(), proc.log()


def test_sigterm_under_load(postfix: PostfixInstance, served: Callable[..., FaultServe]) -> None:
    proc = served(zone_text=ZONE)
    results = []
    restarted = threading.Event()

    def sender() -> None:
        for _ in range(4):
            results.append(send(postfix, postfix.alt, "load", from_domain="good.test", tries=20,
                                between=lambda _: restarted.wait(30) and time.sleep(0.2)))

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    proc.stop()
    proc.start()
    restarted.set()
    for t in threads:
        t.join()
    outcomes = [exactly_once_or_refused(postfix, s) for s in results]
    assert outcomes == ["delivered"] * len(results)


def start_on_the_socket_as_it_is(proc: FaultServe, timeout: float = 15.0) -> None:
    """Start `proc` without the test helper's clean-up of a stale socket file: mailwarden's own
    start-up must deal with it."""
    with open(proc.log_path, "ab") as log:
        proc.proc = subprocess.Popen(proc.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **proc.env})
    deadline = time.monotonic() + timeout
    while True:
        assert proc.proc.poll() is None, proc.log()
        try:
            with MilterClient.connect(proc.spec, timeout=5) as c:
                c.optneg()
            return
        except OSError:
            assert time.monotonic() < deadline, proc.log()
            time.sleep(0.1)


def test_the_supervisor_killed_then_restarted_on_its_stale_socket(
    postfix: PostfixInstance, served: Callable[..., FaultServe]
) -> None:
    proc = served(zone_text=ZONE)
    assert proc.proc is not None
    proc.proc.kill()
    proc.proc.wait()
    assert proc.socket_path.is_socket()  # left behind
    sent = send(postfix, postfix.alt, "after a crash", from_domain="good.test", tries=3,
                between=lambda attempt: start_on_the_socket_as_it_is(proc) if attempt == 1 else None)
    assert sent.attempts[0].code == 451, str(sent.attempts[0])  # no milter: milter_default_action
    assert exactly_once_or_refused(postfix, sent) == "delivered"


def test_postfix_restarted_while_connections_are_open(
    postfix: PostfixInstance, served: Callable[..., FaultServe]
) -> None:
    served(zone_text=ZONE)
    results = []
    restarted = threading.Event()

    def sender() -> None:
        results.append(send(postfix, postfix.alt, "pause", from_domain="good.test", tries=5,
                            between=lambda _: restarted.wait(60)))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # every session is in the 3 s stage at end of message
    postfix.stop()
    postfix.start()
    restarted.set()
    for t in threads:
        t.join()
    assert [exactly_once_or_refused(postfix, s) for s in results] == ["delivered"] * 4
    assert any(s.attempts[0].code != 250 for s in results)  # the restart did cut sessions
