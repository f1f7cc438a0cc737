"""Reload (compile first, swap whole, keep the old set on errors), start-up refusal, `rules check`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.rules.helpers import config_for, transaction, write_packs

from mailwarden.bootstrap import BuildEnv
from mailwarden.core.decisions import Action, Outcome
from mailwarden.core.pipeline import Phase
from mailwarden.errors import ConfigError
from mailwarden.resolver.static import StaticZone
from mailwarden.rules.build import rule_stages
from mailwarden.rules.holder import RuleSetHolder
from mailwarden.rules.watch import PackWatch

REPO = Path(__file__).resolve().parents[2]


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_reload_swaps_only_a_complete_good_set(tmp_path: Path) -> None:
    write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ REJECT old\n"})
    holder = RuleSetHolder([tmp_path])
    first = holder.current
    path = tmp_path / "header_checks/10.pcre"
    path.write_text("/^Subject:/ REJECT new\n/^X-(/ REJECT broken\n")
    _touch_later(path)
    assert holder.changed()
    errors = holder.reload()
    assert [(e.path, e.line) for e in errors] == [(str(path), 2)]
    assert holder.current is first  # the broken file keeps the old set running
    assert not holder.changed()  # and it is not recompiled again until it changes
    path.write_text("/^Subject:/ REJECT new\n")
    _touch_later(path)
    assert holder.reload() == []
    assert holder.current is not first
    hit = holder.current.matcher("header_checks").lookup(b"Subject: x")
    assert hit is not None and hit.result == b"REJECT new"


def test_message_in_flight_keeps_its_set(tmp_path: Path) -> None:
    write_packs(
        tmp_path,
        {
            "header_checks/10.pcre": "/^Subject:/ WARN old\n",
            "body_checks/10.pcre": "/^hello/ WARN body old\n",
        },
    )
    env = BuildEnv(config_for(tmp_path, "reload_interval = 0"), StaticZone.from_text(""), "mx", tmp_path)
    stages = rule_stages(env)
    tx = transaction([("Subject", " s")])
    outcome = Outcome()
    header_stage = next(s for s in stages if s.phase is Phase.HEADERS)
    res = header_stage.run(tx, outcome)
    outcome.facts.update(res.facts)
    outcome.rules.extend(res.rules)
    # The files change between end-of-headers and end-of-message.
    (tmp_path / "body_checks/10.pcre").write_text("/^hello/ REJECT body new\n")
    holder = header_stage.holder  # type: ignore[attr-defined]
    holder.reload()
    body_stage = next(s for s in stages if s.name == "body_checks")
    res = body_stage.run(tx, outcome)
    assert res.verdict is None
    assert [r["action"] for r in res.rules] == ["WARN body old"]
    # The next message gets the new set.
    res = body_stage.run(transaction([("Subject", " s")]), Outcome())
    assert res.verdict is not None and res.verdict.action is Action.REJECT


def test_the_watch_counts_a_change_once_it_has_settled(tmp_path: Path) -> None:
    write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ WARN a\n"})
    watch = PackWatch(lambda: [tmp_path])
    path = tmp_path / "header_checks/10.pcre"
    assert not watch.changed()
    # An editor rewriting in place, caught half-way: emptied ...
    path.write_text("")
    _touch_later(path)
    assert not watch.changed()  # seen once: not yet
    # ... then written: a different file again, so still not settled.
    path.write_text("/^Subject:/ WARN b\n")
    _touch_later(path)
    assert not watch.changed()
    assert watch.changed()  # the same at two checks in a row: reload now
    assert not watch.changed()  # and only once
    (tmp_path / "header_checks/20.pcre").write_text("/^X-A:/ WARN x\n")
    assert not watch.changed()
    watch.rebase()  # a SIGHUP reloaded meanwhile: nothing left to do
    assert not watch.changed() and not watch.changed()


def test_the_watch_keeps_quiet_about_a_folder_it_cannot_read(caplog: pytest.LogCaptureFixture) -> None:
    def unreadable() -> list[Path]:
        raise PermissionError(13, "Permission denied", "/etc/mailwarden/rules")

    with caplog.at_level("WARNING", logger="mailwarden.rules"):
        watch = PackWatch(unreadable)  # the packs loaded at start stay in force
        assert not watch.changed() and not watch.changed()
    assert len([r for r in caplog.records if "cannot check the packs" in r.getMessage()]) == 1


def test_a_worker_never_reloads_the_packs_on_its_own(tmp_path: Path) -> None:
    """Only the supervisor reloads (a new runtime for every worker at once): a stage keeps the
    packs its runtime was built with, however the files change."""
    write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ WARN old\n"})
    env = BuildEnv(config_for(tmp_path, "reload_interval = 0.001"), StaticZone.from_text(""), "mx", tmp_path)
    stage = next(s for s in rule_stages(env) if s.phase is Phase.HEADERS)
    path = tmp_path / "header_checks/10.pcre"
    path.write_text("/^Subject:/ REJECT new\n")
    _touch_later(path)
    for _ in range(3):
        res = stage.run(transaction([("Subject", " s")]), Outcome())
        assert res.verdict is None and [r["action"] for r in res.rules] == ["WARN old"]


def test_service_refuses_to_start_on_a_bad_rule(tmp_path: Path) -> None:
    write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ REJECT\n/^X-Bad/Q REJECT\n"})
    env = BuildEnv(config_for(tmp_path), StaticZone.from_text(""), "mx", tmp_path)
    with pytest.raises(ConfigError) as exc:
        rule_stages(env)
    assert exc.value.problems == [
        f'rules: {tmp_path}/header_checks/10.pcre:2:9: unknown regexp option "Q": skipping this rule'
    ]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwarden", "rules", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_rules_check_reports_file_line_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcre"
    bad.write_text(
        "# ok\n/^Subject:/ REJECT\n/^X-(/ REJECT\n/^X-A: (a)/ WARN $2\nendif\n/^X-B:/ FILTER smtp:x\n"
    )
    proc = _cli("check", str(bad))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    missing = "error in regex at offset 4: missing closing parenthesis: skipping this rule"
    assert lines[0] == f"{bad}:3:6: {missing}"
    assert lines[1] == f'{bad}:4:2: out of range replacement index "2": skipping this rule'
    assert lines[2] == f"{bad}:5:1: ignoring ENDIF without matching IF"
    assert lines[3] == f"{bad}:6:1: warning: FILTER has no milter equivalent: this rule will be ignored"


def test_rules_check_on_the_shipped_packs_is_clean() -> None:
    proc = _cli("check")
    assert proc.returncode == 0, proc.stdout
    proc = _cli("check", str(REPO / "rules"))
    assert proc.returncode == 0, proc.stdout
    assert "3 table(s)" in proc.stderr


WARNED = (
    b"/^Subject:/ INFO kept\n"
    b"if /^X-/\n"
    b"  /Words/ REJECT lost\n"
    b"endif\n"
    b"/^From:/X INFO obsolete flag\n"
    b"/^To:/\n"
    b"if /^Cc:/ extra\n"
    b"/x/ INFO y\n"
    b"endif junk\n"
    b"if /^Bcc:/\n"
    b"/\\d+/ INFO digits\n"
)


@pytest.mark.parametrize("kind", ["pcre", "regexp"])
def test_rules_check_fails_on_every_postfix_warning(tmp_path: Path, kind: str) -> None:
    """Rules Postfix keeps but warns about make `rules check` fail, each at postmap's line."""
    from tests.rules.test_postmap_diff import POSTMAP_CMD

    table = tmp_path / f"t.{kind}"
    table.write_bytes(WARNED)
    proc = _cli("check", str(table))
    assert proc.returncode == 1
    assert "0 error(s)" in proc.stderr or kind == "regexp"  # X is an unknown flag in regexp:
    ours = set()
    for line in proc.stdout.splitlines():
        m = re.fullmatch(r".*?:(\d+):\d+: (?:warning: )?(.*?)(?: \((?:the|every) .*\))?", line)
        assert m is not None, line
        ours.add((int(m.group(1)), m.group(2)))
    cmd = [*POSTMAP_CMD, "-q", "x", f"{kind}:{table}"]
    postmap = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    theirs = set()
    for line in postmap.stderr.splitlines():
        where, text = line.split(", line ", 1)[1].split(": ", 1)
        theirs.add((int(where), text))
    mailwarden_only = {t for t in ours if "unknown command" in t[1] or "not an escape" in t[1]}
    assert {(ln, t.removesuffix(": skipping this rule")) for ln, t in ours - mailwarden_only} == {
        (ln, t.removesuffix(": skipping this rule")) for ln, t in theirs
    }
    out = proc.stdout
    assert f"{table}:2:1: warning: do not prepend whitespace to statements between IF and ENDIF" in out
    assert "(the rule on line 3 is indented, joined to this IF, and lost)" in out
    assert f"{table}:10:1: warning: IF has no matching ENDIF" in out
    assert (f"{table}:11:2: warning: \\d is not an escape" in out) == (kind == "regexp")
