"""Interop with real tools: OpenDKIM (opendkim -t, and opendkim as a milter) and dkimpy."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dkimsupport import (
    MSG,
    ZONE,
    OpenDkimMilter,
    dnsfunc,
    opendkim_verify,
    results,
    safe_keys,
    sign,
    sign_config,
    signing_key,
    to_bytes,
)
from tests.support.milterclient import MilterClient, apply_mods

import dkim
from mailwarden.core.model import Header
from mailwarden.core.wire import parse_message
from mailwarden.dkim.sign import Signer

pytestmark = pytest.mark.skipif(shutil.which("opendkim") is None, reason="opendkim not installed")

CASES = {
    "rsa-relaxed": (["rsa"], "relaxed/relaxed"),
    "rsa-simple": (["rsa"], "simple/simple"),
    "ed25519-relaxed": (["ed"], "relaxed/relaxed"),
    "ed25519-simple": (["ed"], "simple/simple"),
    "dual": (["rsa", "ed"], "relaxed/relaxed"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_opendkim_and_dkimpy_verify_our_signatures(case: str, tmp_path: Path) -> None:
    names, canon = CASES[case]
    signed = sign(MSG, [signing_key(n) for n in names], canon)
    report = opendkim_verify(signed, tmp_path)
    for n in names:
        algo = "rsa-sha256" if n == "rsa" else "ed25519-sha256"
        assert "dkim=pass" in report and f"header.a={algo} header.s={n}" in report, report
    assert report.count("dkim=pass") == len(names)
    d = dkim.DKIM(signed)
    assert all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(len(names)))


def test_opendkim_rejects_tampered_copies(tmp_path: Path) -> None:
    signed = sign(MSG, [signing_key("rsa")], "simple/simple")
    for old, new in ((b"the numbers", b"the Numbers"), (b"Hello  Bob", b"Hello Bob"),
                     (b"X-Unsigned: yes\r\n", b"Cc: eve@evil.test\r\n")):
        assert "dkim=fail" in opendkim_verify(signed.replace(old, new), tmp_path)
        assert results(signed.replace(old, new)) == ["fail"]


@pytest.fixture
def opendkim_signer(tmp_path: Path) -> Iterator[Callable[[str], OpenDkimMilter]]:
    started: list[OpenDkimMilter] = []

    def start(canon: str) -> OpenDkimMilter:
        base = tmp_path / f"odk{len(started)}"
        base.mkdir()
        started.append(OpenDkimMilter(base, canon).start())
        return started[-1]

    yield start
    for m in started:
        m.stop()


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
def test_opendkim_signatures_pass_here(canon: str, opendkim_signer: Callable[[str], OpenDkimMilter]) -> None:
    odk = opendkim_signer(canon)
    with MilterClient.connect(odk.spec) as mc:
        mc.optneg()
        # OpenDKIM signs for its InternalHosts (127.0.0.1 by default).
        res = mc.send_message(MSG, "<alice@example.com>", ["<bob@example.org>"],
                              connect={"addr": "127.0.0.1"})
        signed = apply_mods(MSG, res.mods, leadspc=mc.leadspc)
    assert signed.startswith(b"DKIM-Signature:") and f"c={canon}".encode() in signed
    assert results(signed) == ["pass"]
    assert results(signed.replace(b"the numbers", b"the Numbers")) == ["fail"]
    # OpenDKIM oversigns From here: a second From breaks it; an unsigned header does not.
    assert results(signed.replace(b"To: Bob", b"From: eve@evil.test\r\nTo: Bob")) == ["fail"]
    assert results(signed.replace(b"X-Unsigned: yes", b"X-Unsigned: yes\r\nX-Other: 1")) == ["pass"]


def test_mailwarden_serve_signs_over_the_milter_protocol(mailwarden_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = safe_keys(tmp_path / "keys")
    proc = mailwarden_factory(sign_config(keys), zone_text=ZONE.read_text())
    with MilterClient.connect(proc.spec) as mc:
        mc.optneg()
        res = mc.send_message(MSG, "<alice@example.com>", ["<bob@example.org>"], daemon_name="ORIGINATING")
        signed = apply_mods(MSG, res.mods, leadspc=mc.leadspc)
    assert [m.op for m in res.mods if m.name == "DKIM-Signature"] == ["insheader", "insheader"]
    assert all(m.index == 0 for m in res.mods if m.name == "DKIM-Signature")
    assert results(signed) == ["pass", "pass"]
    report = opendkim_verify(signed, tmp_path)
    assert report.count("dkim=pass") == 2, report


def _signed_at(now: float, expire: int) -> bytes:
    p = parse_message(MSG)
    (value,) = Signer("relaxed/relaxed", ("From", "To", "Subject"), (), expire=expire).sign(
        [signing_key("rsa")], p.headers, lambda: [p.body], now)
    return to_bytes([Header("DKIM-Signature", value), *p.headers], p.body)


def test_never_checked_signatures_get_opendkims_label(tmp_path: Path) -> None:
    # Every PERMFAIL before the cryptography gets one label, the one OpenDKIM gives: permerror.
    now = time.time()  # opendkim -t checks timestamps against the real clock
    good = sign(MSG, [signing_key("rsa")], now=now)
    ahead = _signed_at(now, 600)
    t = re.search(rb"t=(\d+)", ahead).group(1)  # type: ignore[union-attr]
    x = re.search(rb"x=(\d+)", ahead).group(1)  # type: ignore[union-attr]
    cases = {
        "unknown algorithm": good.replace(b"a=rsa-sha256", b"a=rsa-md5", 1),
        "unknown version": good.replace(b"v=1;", b"v=2;", 1),
        "expired": _signed_at(now - 7200, 600),
        "timestamp in the future": _signed_at(now + 7200, 0),
        "x= before t=": ahead.replace(b"x=" + x, b"x=" + str(int(t) - 10).encode(), 1),
    }
    for name, raw in cases.items():
        theirs = re.search(r"dkim=(\w+)", opendkim_verify(raw, tmp_path))
        assert theirs is not None and theirs.group(1) == "permerror", name
        assert results(raw, now=now) == ["permerror"], name
