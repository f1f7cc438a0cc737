"""Reload (compile first, swap whole, keep the old set on errors), start-up refusal, `rules check`."""

from __future__ import annotations

import os
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

REPO = Path(__file__).resolve().parents[2]


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_reload_swaps_only_a_complete_good_set(tmp_path: Path) -> None:
    write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ REJECT old\n"})
    holder = RuleSetHolder([tmp_path], interval=0)
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


def test_polling_reloads_in_the_background(tmp_path: Path) -> None:
    write_packs(tmp_path, {"header_checks/10.pcre": "/^Subject:/ WARN a\n"})
    now = [0.0]
    holder = RuleSetHolder([tmp_path], interval=5, clock=lambda: now[0])
    first = holder.current
    path = tmp_path / "header_checks/10.pcre"
    path.write_text("/^Subject:/ WARN b\n")
    _touch_later(path)
    holder.maybe_reload()
    assert holder.current is first  # not yet: the interval has not passed
    now[0] = 6.0
    holder.maybe_reload()
    for _ in range(200):
        if holder.current is not first:
            break
        import time

        time.sleep(0.01)
    assert holder.current is not first


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
