"""mailwarden keygen / check-keys, and the dkim part of dry-run's JSON."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dkimsupport import MSG, NOW, ZONE, results, safe_keys, sign, sign_config, signing_key

from mailwarden.dkim.keys import load_private_key, parse_key_record
from mailwarden.resolver.static import StaticZone


def mw(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mailwarden", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("algorithm", "bits"), [("rsa", "2048"), ("ed25519", "0")])
def test_keygen_writes_a_private_key_and_a_zone_record(tmp_path: Path, algorithm: str, bits: str) -> None:
    args = ["keygen", "--domain", "example.org", "--selector", "s1", "--algorithm", algorithm,
            "--out", str(tmp_path)]
    proc = mw(*args, *(["--bits", bits] if algorithm == "rsa" else []))
    assert proc.returncode == 0, proc.stderr
    keyfile = tmp_path / "example.org.s1.key"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    key = load_private_key(keyfile)  # safe mode: accepted
    strings = re.findall(r'"([^"]*)"', proc.stdout)
    assert strings and all(len(s) <= 255 for s in strings)
    assert "s1._domainkey.example.org." in proc.stdout
    zone = StaticZone.from_text(proc.stdout.split("\n", 1)[1])
    (record,) = zone.txt("s1._domainkey.example.org")
    assert parse_key_record(record).der() == key.public_bytes()
    assert (tmp_path / "example.org.s1.zone").read_text() in proc.stdout
    again = mw(*args)
    assert again.returncode == 1 and "exists" in again.stderr


def test_check_keys(tmp_path: Path) -> None:
    keys = safe_keys(tmp_path / "keys")
    cfg = tmp_path / "mw.toml"
    cfg.write_text(sign_config(keys))
    ok = mw("check-keys", "--config", str(cfg), "--zone", str(ZONE))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count(": OK") == 3
    # The rsa key published under the ed selector's name: a mismatch.
    (keys / "rsa.key").write_bytes((keys / "other.key").read_bytes())
    bad = mw("check-keys", "--config", str(cfg), "--zone", str(ZONE))
    assert bad.returncode == 1 and "does not match" in bad.stdout
    (keys / "ed.key").chmod(0o644)
    unsafe = mw("check-keys", "--config", str(cfg), "--zone", str(ZONE))
    assert unsafe.returncode != 0 and "0644" in unsafe.stderr + unsafe.stdout


def test_dry_run_json_has_dkim_results(tmp_path: Path) -> None:
    signed = sign(MSG, [signing_key("rsa"), signing_key("ed")], now=NOW)
    tampered = signed.replace(b"the numbers", b"the Numbers").replace(b"s=ed;", b"s=slow;")
    (tmp_path / "a.eml").write_bytes(tampered)
    proc = mw("dry-run", "--json", "--zone", str(ZONE), str(tmp_path / "a.eml"))
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout.splitlines()[0])
    dk = obj["auth"]["dkim"]
    assert [(d["result"], d["domain"], d["selector"], d["algorithm"]) for d in dk] == [
        ("fail", "example.com", "rsa", "rsa-sha256"), ("temperror", "example.com", "slow", "ed25519-sha256")]
    assert all(d["reason"] for d in dk)


def test_dry_run_warns_about_8bit_bodies_when_signing(tmp_path: Path) -> None:
    keys = safe_keys(tmp_path / "keys")
    cfg = tmp_path / "mw.toml"
    cfg.write_text(sign_config(keys))
    (tmp_path / "m.eml").write_bytes(MSG + "Gr\u00fc\u00dfe\r\n".encode())
    proc = mw("dry-run", "--json", "--config", str(cfg), "--zone", str(ZONE), "--daemon-name", "ORIGINATING",
              "--write", str(tmp_path / "out"), str(tmp_path / "m.eml"))
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout.splitlines()[0])
    assert any("8-bit" in w for w in obj["auth"]["dkim_sign"]["warnings"])
    sigs = [e for e in obj["edits"] if e.get("name") == "DKIM-Signature"]
    assert len(sigs) == 2
    (written,) = (tmp_path / "out").rglob("*.eml")
    assert results(written.read_bytes()) == ["pass", "pass"]
