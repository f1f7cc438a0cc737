"""[log]: syslog to a unix datagram socket the test binds, journald's <N> prefixes, auto's choice,
JSON lines; and what the per-message lines say (dkim=none, signed=, by=, the signing warning).

The served tests run the real `mailwarden serve` and talk the milter protocol to it.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.milterclient import MilterClient
from tests.support.postfix import MailwardenProcess

from mailwarden.adapters.dryrun import EnvelopeFlags, run_one
from mailwarden.adapters.summary import summary_line
from mailwarden.bootstrap import build_runtime
from mailwarden.config import parse
from mailwarden.config.log import LogSection
from mailwarden.logsetup import resolve_target

# 8-bit body, signed: the signing stage warns that Postfix may convert it and break the signature.
EIGHT_BIT = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: caf\xc3\xa9\r\n"
             b"Message-ID: <1@example.com>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\ncaf\xc3\xa9\r\n")
PLAIN = b"From: carol@example.net\r\nTo: bob@example.org\r\nSubject: hello\r\n\r\nhi\r\n"


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A config that signs mail from example.com with a fresh Ed25519 key."""
    keys = tmp_path_factory.mktemp("keys")
    subprocess.run([sys.executable, "-m", "mailwarden", "keygen", "--domain", "example.com", "--selector",
                    "s1", "--algorithm", "ed25519", "--out", str(keys)], check=True, capture_output=True)
    return (f'[dkim.keys.k]\ndomain = "example.com"\nselector = "s1"\n'
            f'key_file = "{keys}/example.com.s1.key"\n'
            '[[dkim.sign]]\nmatch = ["example.com"]\nkeys = ["k"]\n')


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield sock, path
    sock.close()


def _datagrams(sock: socket.socket, until: str) -> list[str]:
    got: list[str] = []
    while not any(until in d for d in got):
        got.append(sock.recv(65536).decode("utf-8", "replace"))
    return got


def _send(spec: str, raw: bytes) -> str:
    with MilterClient.connect(spec) as mc:
        mc.optneg()
        reply = mc.send_message(raw, mail_from="<alice@example.com>", rcpts=["<bob@example.org>"],
                                auth="alice")
    return str(reply)


def test_syslog_target_sends_priority_facility_and_tag_to_the_socket(
    mailwarden_factory, syslog_socket, signing: str
) -> None:  # type: ignore[no-untyped-def]
    sock, path = syslog_socket
    config = ('[milter]\nworkers = 1\n[log]\ntarget = "syslog"\nfacility = "local3"\n'
              f'syslog_socket = "{path}"\n')
    proc = mailwarden_factory(config + signing)
    _send(proc.spec, EIGHT_BIT)
    lines = _datagrams(sock, "dkim-sign: 8-bit body")
    local3 = 19 * 8
    summary = next(d for d in lines if "verdict=" in d)
    stamp = r"\w{3} [ \d]\d \d\d:\d\d:\d\d"
    assert re.match(rf"^<{local3 + 6}>{stamp} mailwarden\[\d+\]: \w+: client=", summary)
    assert "signed=example.com/s1" in summary
    warning = next(d for d in lines if "8-bit body" in d)
    assert re.match(rf"^<{local3 + 4}>.* mailwarden\[\d+\]: warning: \w+: dkim-sign: 8-bit body", warning)
    assert not any(d.endswith("\0") for d in lines)
    assert "verdict=" not in proc.log()  # nothing of it on stderr


def test_journald_target_has_priority_prefixes_and_no_timestamp(signing: str) -> None:
    proc = MailwardenProcess(config="[milter]\nworkers = 1\n[log]\ntarget = \"auto\"\n" + signing)
    try:
        proc.log_path.touch()
        st = proc.log_path.stat()  # the service's stderr, as systemd would name it
        proc.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        proc.start()
        _send(proc.spec, EIGHT_BIT)
        deadline = time.monotonic() + 10
        while "dkim-sign: 8-bit" not in proc.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = proc.log().splitlines()
    finally:
        proc.close()
    assert lines and all(re.match(r"^<[2-7]>", line) for line in lines), lines
    assert any(re.match(r"^<6>\w+: client=", line) for line in lines), lines
    assert any(re.match(r"^<4>warning: \w+: dkim-sign: 8-bit body", line) for line in lines), lines
    assert not any(re.match(r"^<\d>\w{3} [ \d]\d ", line) for line in lines)


def test_auto_target(tmp_path: Path) -> None:
    auto = LogSection()
    with open(tmp_path / "err", "w") as stream:
        st = os.fstat(stream.fileno())
        assert resolve_target(auto, {}, stream) == "syslog"
        assert resolve_target(auto, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stream) == "journald"
        # inherited by a process whose stderr went elsewhere: not the journal
        assert resolve_target(auto, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, stream) == "syslog"
        assert resolve_target(LogSection(target="stderr"), {}, stream) == "stderr"
    main, tty = os.openpty()
    with os.fdopen(tty, "w") as stream:
        assert resolve_target(auto, {}, stream) == "stderr"
    os.close(main)


def test_auto_without_a_syslog_socket_logs_to_stderr_and_says_so(tmp_path: Path) -> None:
    from mailwarden import logsetup

    out = io.StringIO()  # no terminal: auto means syslog
    section = LogSection(syslog_socket=str(tmp_path / "absent.sock"))
    assert logsetup.setup("info", out, section, env={}) == "stderr"
    assert "warning: cannot log to syslog at" in out.getvalue()
    logsetup.setup("warning")


def test_explicit_syslog_without_its_socket_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "mw.toml"
    cfg.write_text(f'[log]\ntarget = "syslog"\nsyslog_socket = "{tmp_path}/absent.sock"\n')
    proc = subprocess.run([sys.executable, "-m", "mailwarden", "serve", "-c", str(cfg), "--socket",
                           f"unix:{tmp_path}/m.sock"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mailwarden: [log] syslog_socket"), proc.stderr


def test_json_format(tmp_path: Path) -> None:
    from mailwarden import logsetup

    out = io.StringIO()
    logsetup.setup("info", out, LogSection(target="stderr", format="json"))
    logsetup.LOG.warning("careful %s", "now")
    logsetup.setup("warning")
    obj = json.loads(out.getvalue())
    assert obj["level"] == "warning" and obj["message"] == "careful now" and obj["pid"] == os.getpid()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$", obj["time"])


def test_bad_log_settings_name_their_key() -> None:
    from mailwarden.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse('[log]\ntarget = "file"\nfacility = "mial"\nsyslog_socket = "dev/log"\n')
    text = "\n".join(err.value.problems)
    assert "log.target" in text and "log.facility" in text and "log.syslog_socket" in text


# -- the per-message line --------------------------------------------------------------------

def _summary(config: str, raw: bytes, rules_dir: Path | None = None, **flags: str) -> str:
    runtime = build_runtime(parse(config), zones=(), rules_dir=rules_dir)
    tx, outcome, _ = run_one(runtime, raw, EnvelopeFlags(**flags))  # type: ignore[arg-type]
    return summary_line(tx, outcome, 0.001)


def test_summary_says_dkim_none_without_signatures(tmp_path: Path) -> None:
    zone = '[dns]\nzones = ["' + str(_empty_zone(tmp_path)) + '"]\n'
    line = _summary(zone, PLAIN, client_ip="192.0.2.9")
    assert "dkim=none" in line and "signed=" not in line


def test_summary_names_the_signatures_made(tmp_path: Path, signing: str) -> None:
    zone = '[dns]\nzones = ["' + str(_empty_zone(tmp_path)) + '"]\n'
    line = _summary(zone + signing, EIGHT_BIT, auth_user="alice")
    assert "signed=example.com/s1" in line and "dir=outbound" in line


@pytest.mark.parametrize(("klass", "rule", "verdict", "by"), [
    ("header_checks", "/^Subject: hello/ REJECT no", "reject", "header_checks"),
    ("header_checks", "/^Subject: hello/ HOLD look", "quarantine", "header_checks"),
    ("header_checks", "/^Subject: hello/ DISCARD gone", "discard", "header_checks"),
    ("body_checks", "/^hi/ REJECT no", "reject", "body_checks"),
    ("body_checks", "/^hi/ HOLD look", "quarantine", "body_checks"),
])
def test_summary_names_the_rule_class_that_decided(
    tmp_path: Path, klass: str, rule: str, verdict: str, by: str
) -> None:
    rules = tmp_path / "rules"
    (rules / klass).mkdir(parents=True)
    (rules / klass / "10-test.pcre").write_text(rule + "\n")
    zone = '[dns]\nzones = ["' + str(_empty_zone(tmp_path)) + '"]\n'
    line = _summary(zone, PLAIN, rules_dir=rules, client_ip="192.0.2.9")
    assert f"verdict={verdict}" in line and f"by={by}," in line, line


def _empty_zone(tmp_path: Path) -> Path:
    zone = tmp_path / "empty.zone"
    zone.write_text("")
    return zone
