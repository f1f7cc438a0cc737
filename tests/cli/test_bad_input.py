"""Every subcommand, given bad arguments and files: one `mailwarden: ...` line, the documented exit
status (2 usage or configuration, 1 the command ran and failed), never a Python traceback.

Each case runs the real command in a subprocess, in a directory of prepared bad files. `DIR/` in
the arguments is that directory, which holds FILES.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mailwarden.cli import EXIT_STATUSES, build_parser, exit_status_text

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "missing.toml": None,
    "bad.toml": "[milter\nsocket = 1\n",
    "unknown-key.toml": "[milter]\nsockett = \"unix:/run/x.sock\"\n",
    "bad-socket.toml": "[milter]\nsocket = \"bogus:x\"\n",
    "bad-port.toml": "[milter]\nsocket = \"inet:70000@127.0.0.1\"\n",
    "workers.toml": "[milter]\nworkers = 0\n",
    "timeout.toml": "[dns]\ntimeout = -1\n",
    "keys.toml": "[dkim.keys.k]\ndomain = \"example.com\"\nselector = \"s\"\nkey_file = \"absent.key\"\n",
    "syslog.toml": "[log]\ntarget = \"syslog\"\nsyslog_socket = \"/nonexistent/log.sock\"\n",
    "facility.toml": "[log]\nfacility = \"mial\"\n",
    "metrics-bad.toml": "[metrics]\nlisten = \"localhost:http\"\n",
    "metrics-addr.toml": "[metrics]\nlisten = \"192.0.2.1:9797\"\n",  # not an address of ours: bind fails
    "nostore.toml": "[reports]\nstore = \"\"\n",  # serve records no report rows on this machine
    "zone-garbage.zone": "this is not a zone\n",
    "zone-bad-txt.zone": "x.example. 300 IN TXT \"unterminated\n",
    "zone-bad-ttl.zone": "x.example. notattl IN A 192.0.2.1\n",
    "missing.zone": None,
    "msg.eml": "From: a@example.com\nSubject: hi\n\nbody\n",
    "table.pcre": "/^Subject: x/ REJECT\n",
    "badrule.pcre": "/^Subject: (x/ REJECT\n",
    "notadir": "a file where a directory is expected\n",
}

# (subcommand and arguments, exit status, a word the one line must contain)
CASES: list[tuple[str, int, str]] = [
    # usage
    ("", 2, "required"),
    ("bogus", 2, "invalid choice"),
    ("serve --no-such-flag", 2, "unrecognized"),
    ("config-example extra", 2, "unrecognized"),
    ("rules", 2, "required"),
    # serve: sockets
    ("serve --socket bogus:x", 2, "not a libmilter socket"),
    ("serve --socket inet:99999@127.0.0.1", 2, "1-65535"),
    ("serve --socket inet:0@127.0.0.1", 2, "1-65535"),
    ("serve --socket inet:nosuchservice@127.0.0.1", 2, "service"),
    ("serve --socket inet6:9999@127.0.0.1", 2, "IPv6"),
    ("serve --socket unix:relative.sock", 2, "absolute"),
    ("serve --socket unix:/" + "x" * 120, 2, "107 bytes"),
    ("serve -c DIR/nostore.toml --user root --socket unix:DIR/notadir/milter.sock", 1, "notadir"),
    ("serve -c DIR/bad-socket.toml", 2, "milter.socket"),
    ("serve -c DIR/bad-port.toml", 2, "milter.socket"),
    # serve: config, zones, rules
    ("serve -c DIR/missing.toml", 2, "cannot read"),
    ("serve -c DIR/bad.toml", 2, "TOML syntax"),
    ("serve -c DIR/workers.toml --socket unix:/tmp/x.sock", 2, "milter.workers"),
    ("serve --zone DIR/zone-garbage.zone --socket unix:/tmp/x.sock", 2, "dns.zones"),
    ("serve -c DIR/syslog.toml --socket unix:/tmp/x.sock", 1, "syslog_socket"),
    ("serve -c DIR/facility.toml --socket unix:/tmp/x.sock", 2, "log.facility"),
    ("serve -c DIR/metrics-bad.toml --socket unix:/tmp/x.sock", 2, "metrics.listen"),
    ("serve -c DIR/metrics-addr.toml --socket unix:DIR/m.sock", 1, "[metrics] listen"),
    ("serve --rules-dir DIR/missing.zone --socket unix:/tmp/x.sock", 2, "rules-dir"),
    # check-config
    ("check-config -c DIR/missing.toml", 2, "cannot read"),
    ("check-config -c .", 2, "directory"),
    ("check-config -c DIR/bad.toml", 2, "TOML syntax"),
    ("check-config -c DIR/unknown-key.toml", 2, "milter.sockett: unknown key"),
    ("check-config -c DIR/bad-socket.toml", 2, "milter.socket"),
    ("check-config -c DIR/workers.toml", 2, "milter.workers"),
    ("check-config -c DIR/timeout.toml", 2, "dns.timeout"),
    ("check-config -c DIR/keys.toml", 2, "absent.key"),
    ("check-config --zone DIR/missing.zone", 2, "cannot read"),
    ("check-config --zone DIR/zone-garbage.zone", 2, "dns.zones"),
    ("check-config --zone DIR/zone-bad-txt.zone", 2, "dns.zones"),
    ("check-config --zone DIR/zone-bad-ttl.zone", 2, "dns.zones"),
    ("check-config --rules-dir DIR/notadir", 2, "rules-dir"),
    ("check-config --zone .", 2, "directory"),
    # dry-run
    ("dry-run DIR/missing.zone", 1, "cannot read"),
    ("dry-run --write DIR/notadir/out DIR/msg.eml", 1, "--write"),
    ("dry-run --write /proc/no/such/dir DIR/msg.eml", 1, "--write"),
    ("dry-run -c DIR/bad.toml DIR/msg.eml", 2, "TOML syntax"),
    ("dry-run --zone DIR/zone-garbage.zone DIR/msg.eml", 2, "dns.zones"),
    ("dry-run", 2, "required"),
    # rules
    ("rules check DIR/badrule.pcre", 1, "1 error(s)"),  # findings as file:line:col, like a compiler
    ("rules check --config DIR/bad.toml", 2, "TOML syntax"),
    ("rules bogus", 2, "invalid choice"),
    ("rules test DIR/missing.zone", 1, "cannot read"),
    # keygen
    ("keygen --domain example.com --selector s --bits 99999", 2, "1024 to 4096"),
    ("keygen --domain example.com --selector s --bits 512", 2, "1024 to 4096"),
    ("keygen --domain example.com --selector s --bits many", 2, "not a number"),
    ("keygen --domain 'a b' --selector s", 2, "not a DNS name"),
    ("keygen --domain example.com --selector ../x", 2, "not a DNS name"),
    ("keygen --domain example.com --selector s_1", 2, "not a DNS name"),
    ("keygen --domain=-bad-.example --selector s", 2, "not a DNS name"),
    ("keygen --domain example.com --selector s --algorithm dsa", 2, "invalid choice"),
    ("keygen --domain example.com --selector s --algorithm ed25519 --out DIR/notadir/keys", 1, "--out"),
    ("keygen --domain example.com --selector s --algorithm ed25519 --out DIR/missing.zone/keys", 1, "--out"),
    ("keygen --domain example.com --selector s --algorithm ed25519 --out /proc", 1, "keygen: /proc/"),
    # init
    ("init --prefix /proc/no/such", 1, "init:"),
    ("init --prefix", 2, "expected one argument"),
    # reports
    ("reports", 2, "required"),
    ("reports build --out DIR/o --begin yesterday", 2, "not a time"),
    ("reports send -c DIR/bad.toml", 2, "TOML syntax"),
    ("reports send --store bogus://x", 2, "report store"),
    # check-keys, dmarc-lookup, psl-refresh
    ("check-keys -c DIR/missing.toml", 2, "cannot read"),
    ("check-keys -c DIR/keys.toml", 2, "absent.key"),
    ("check-keys --zone DIR/zone-garbage.zone", 2, "dns.zones"),
    ("dmarc-lookup example.com --zone DIR/missing.zone", 2, "cannot read"),
    ("dmarc-lookup example.com -c DIR/bad.toml", 2, "TOML syntax"),
    ("psl-refresh DIR/notadir/psl.dat --url file:///nonexistent", 1, "cannot fetch"),
]


def _argv(case: str, where: Path) -> list[str]:
    import shlex

    return [a.replace("DIR/", f"{where}/") for a in shlex.split(case)]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("bad")
    for name, text in FILES.items():
        if text is not None:
            (where / name).write_text(text)
    return where


@pytest.mark.parametrize(("case", "status", "word"), CASES, ids=[c[0] or "(none)" for c in CASES])
def test_bad_input_gives_one_line_and_the_documented_status(
    bad_files: Path, case: str, status: int, word: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mailwarden", *_argv(case, bad_files)], capture_output=True, text=True,
        timeout=60, cwd=bad_files, stdin=subprocess.DEVNULL, env={**os.environ, "JOURNAL_STREAM": ""},
    )
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == status, output
    said = [line for line in proc.stderr.splitlines() if line.startswith("mailwarden: ")]
    assert said or case.startswith("rules check DIR/"), output
    assert word in output, output


def test_every_subcommand_has_a_bad_input_case() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    tried = {case.split()[0] for case, _, _ in CASES if case}
    assert set(commands) <= tried, set(commands) - tried


def test_serve_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    # Bound, not listening: no instance answers there, and libmilter cannot have it either.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        spec = f"inet:{taken.getsockname()[1]}@127.0.0.1"
        (tmp_path / "nostore.toml").write_text('[reports]\nstore = ""\n')
        command = ["serve", "-c", "nostore.toml", "--user", "root", "--socket", spec]
        proc = subprocess.run([sys.executable, "-m", "mailwarden", *command], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[-1] == f"mailwarden: serve on {spec}: Address already in use"


def test_keygen_creates_only_the_directory_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    base = [sys.executable, "-m", "mailwarden", "keygen", "--domain", "example.com", "--selector", "s",
            "--algorithm", "ed25519", "--out"]
    refused = subprocess.run([*base, str(out)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and not (tmp_path / "a").exists(), refused.stderr
    made = subprocess.run([*base, str(tmp_path / "a")], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["example.com.s.key", "example.com.s.zone"]


def test_a_zone_file_with_an_soa_and_origin_is_read(tmp_path: Path) -> None:
    from mailwarden.resolver.static import StaticZone

    zone = tmp_path / "example.com.zone"
    zone.write_text(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns hostmaster (\n  2026 3600\n  900 86400 300 )\n"
        "_dmarc IN TXT \"v=DMARC1; p=reject\"\nmx.other.example. 60 IN A 192.0.2.7\n"
    )
    answers = StaticZone.from_files([zone])
    assert answers.txt("_dmarc.example.com") == [b"v=DMARC1; p=reject"]
    assert answers.query("mx.other.example", "A").records == ("192.0.2.7",)


def test_exit_statuses_in_help_and_readme_are_the_same() -> None:
    assert exit_status_text() in build_parser().format_help()
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    assert block == exit_status_text() + "\n"
    assert [code for code, _ in EXIT_STATUSES] == [0, 1, 2, 130]
