"""[metrics]: the endpoint of a real `mailwarden serve` with two workers, scraped after known traffic,
one worker killed and replaced in between; the generated metric list and the Grafana dashboard."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support.milterclient import MilterClient

from mailwarden.config import parse
from mailwarden.errors import ConfigError
from mailwarden.metrics import METRICS, document

REPO = Path(__file__).resolve().parents[2]
NAMES = {m.name for m in METRICS}


def _message(subject: str, sender: str = "carol@example.net") -> bytes:
    return f"From: {sender}\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\r\nhi\r\n".encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
        text = page.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def test_counters_equal_the_traffic_summed_over_workers_and_survive_a_replaced_worker(
    mailwarden_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules" / "header_checks"
    rules.mkdir(parents=True)
    (rules / "10-test.pcre").write_text("/^Subject: reject me/ REJECT no thanks\n")
    keys = tmp_path / "keys"
    subprocess.run([sys.executable, "-m", "mailwarden", "keygen", "--domain", "example.com", "--selector",
                    "s1", "--algorithm", "ed25519", "--out", str(keys)], check=True, capture_output=True)
    port = _free_port()
    config = (f'[milter]\nworkers = 2\n[log]\ntarget = "stderr"\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
              f'[dkim.keys.k]\ndomain = "example.com"\nselector = "s1"\n'
              f'key_file = "{keys}/example.com.s1.key"\n'
              '[[dkim.sign]]\nmatch = ["example.com"]\nkeys = ["k"]\n')
    proc = mailwarden_factory(config, args=["--rules-dir", str(tmp_path / "rules")])
    sent: Counter[tuple[str, str]] = Counter()

    def traffic(connections: int, rounds: int) -> None:
        # Opened one by one and held open, so that they are shared out over both workers.
        clients: list[MilterClient] = []
        try:
            for _ in range(connections):
                clients.append(MilterClient.connect(proc.spec))
                clients[-1].optneg()
                time.sleep(0.1)
            for i in range(rounds):
                for n, mc in enumerate(clients):
                    if (i + n) % 3 == 0:
                        reply = mc.send_message(_message("reject me"))
                        sent["inbound", reply.verdict] += 1
                    elif (i + n) % 3 == 1:
                        reply = mc.send_message(_message("hello"))
                        sent["inbound", reply.verdict] += 1
                    else:
                        reply = mc.send_message(_message("mine", "alice@example.com"),
                                                mail_from="<alice@example.com>", auth="alice")
                        sent["outbound", reply.verdict] += 1
        finally:
            for mc in clients:
                mc.close()

    traffic(4, 3)
    pids = set(re.findall(r"mailwarden\[(\d+)\]: \S+: client=", proc.log()))
    assert len(pids) == 2, proc.log()  # both workers served some of it
    victim = int(sorted(pids)[0])
    os.kill(victim, signal.SIGKILL)
    _until(lambda: f"worker {victim} killed by signal 9; starting another" in proc.log(), 10, "restart")
    traffic(2, 3)
    _until(lambda: proc.log().count("client=") == sum(sent.values()), 10, "summary lines")

    samples = _scrape(port)
    assert sent == {("inbound", "reject"): 6, ("inbound", "accept"): 6, ("outbound", "accept"): 6}, sent
    # The milter protocol's accept is our continue: no stage decided, the message goes on.
    assert _value(samples, "mailwarden_messages_total", direction="inbound", verdict="reject") == 6
    assert _value(samples, "mailwarden_messages_total", direction="inbound", verdict="continue") == 6
    assert _value(samples, "mailwarden_messages_total", direction="outbound", verdict="continue") == 6
    assert _value(samples, "mailwarden_messages_decided_total", stage="header_checks") == 6
    assert _value(samples, "mailwarden_rule_hits_total", **{"class": "header_checks"},
                  rule="10-test.pcre:1") == 6
    assert _value(samples, "mailwarden_dkim_signatures_total", domain="example.com",
                  algorithm="ed25519-sha256") == 6
    assert _value(samples, "mailwarden_dkim_results_total", result="none") == 6  # inbound, not rejected
    assert _value(samples, "mailwarden_stage_seconds_count", stage="hopcount") == 18
    assert _value(samples, "mailwarden_worker_restarts_total") == 1
    assert _value(samples, "mailwarden_connections_open") == 0
    assert _value(samples, "mailwarden_dns_queries_total", type="TXT") > 0
    assert f"metrics on http://127.0.0.1:{port}/metrics" in proc.log()
    # Every inbound message with a DMARC record is a report row; the zone publishes none here.
    assert _value(samples, "mailwarden_report_rows", outcome="dropped") == 0


def test_metrics_are_off_by_default_and_a_port_alone_is_loopback() -> None:
    from mailwarden.config.metrics import split_listen

    assert parse("").metrics.listen == ""
    assert split_listen("9797") == ("127.0.0.1", 9797)
    assert split_listen(":9797") == ("127.0.0.1", 9797)
    assert split_listen("[::]:9797") == ("::", 9797)
    for bad in ("localhost:9797", "127.0.0.1:0", "127.0.0.1:70000", "x"):
        with pytest.raises(ConfigError, match=r"metrics\.listen"):
            parse(f'[metrics]\nlisten = "{bad}"\n')


def test_the_metric_list_in_the_docs_is_generated() -> None:
    assert (REPO / "contrib/docs/metrics.md").read_text() == "".join(document()), \
        "regenerate: .venv/bin/python -m mailwarden.metrics > contrib/docs/metrics.md"


def test_the_dashboard_names_only_metrics_that_exist() -> None:
    dashboard = json.loads((REPO / "contrib/grafana/mailwarden.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    named = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"mailwarden_\w+", e)}
    assert named and named <= NAMES, named - NAMES
    assert named >= NAMES, f"not on the dashboard: {NAMES - named}"


def test_no_label_takes_values_from_the_mail() -> None:
    for m in METRICS:
        assert not {"sender", "from", "to", "rcpt", "client", "helo", "ip"} & set(m.labels), m


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_workers_that_dropped_privileges_still_count(mailwarden_factory) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    proc = mailwarden_factory(f'[milter]\nworkers = 1\n[log]\ntarget = "stderr"\n'
                              f'[metrics]\nlisten = "127.0.0.1:{port}"\n', user="nobody")
    assert "workers run as nobody" in proc.log()
    for _ in range(2):
        with MilterClient.connect(proc.spec) as mc:
            mc.optneg()
            mc.send_message(_message("hello"))
    _until(lambda: proc.log().count("client=") == 2, 10, "summary lines")
    assert _value(_scrape(port), "mailwarden_messages_total", direction="inbound", verdict="continue") == 2


def test_reloads_are_counted_by_outcome(mailwarden_factory) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    config = f'[milter]\nworkers = 1\n[log]\ntarget = "stderr"\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    proc = mailwarden_factory(config)
    proc.proc.send_signal(signal.SIGHUP)
    _until(lambda: "reloaded: 1 new worker" in proc.log(), 20, "reload")
    proc.config_path.write_text(config + "[milter\n")
    proc.proc.send_signal(signal.SIGHUP)
    _until(lambda: "reload refused" in proc.log(), 20, "refused reload")
    samples = _scrape(port)
    assert _value(samples, "mailwarden_reloads_total", outcome="ok") == 1
    assert _value(samples, "mailwarden_reloads_total", outcome="failed") == 1
