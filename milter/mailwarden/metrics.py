"""Prometheus metrics ([metrics] listen), summed over every worker, dead ones included.

prometheus_client's multiprocess mode: each process writes its values to files of its own in one
directory, and the endpoint (a thread of the supervisor) adds them up at each scrape. A worker that
dies leaves its counters behind, so totals survive worker replacement; its share of the
connections-open gauge is dropped. The mode is chosen when prometheus_client is first imported,
so `enable` sets the directory first and nothing imports prometheus_client before it.

METRICS is the one list: the metric objects, contrib/docs/metrics.md (`python -m
mailwarden.metrics > contrib/docs/metrics.md`, kept equal by a test) and the Grafana dashboard's
check are made from it. Labels take values from small fixed sets, never from the mail: no sender
domain, no address; DKIM signatures made are labelled with the configured signing domains only.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mailwarden.core.auth import DkimResults, SpfResult
from mailwarden.core.decisions import Outcome
from mailwarden.core.model import Transaction
from mailwarden.core.ports import DnsAnswer, Resolver
from mailwarden.errors import CommandFailed, DnsTempError


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # counter, gauge or histogram
    labels: tuple[str, ...]
    help: str
    # How a gauge adds up over processes: livesum drops a dead worker's share, sum keeps it.
    mode: Literal["livesum", "sum"] = "livesum"


METRICS = (
    Metric("mailwarden_messages_total", "counter", ("direction", "verdict"),
           "Messages, by direction (inbound, outbound) and verdict (continue, accept, reject, tempfail, "
           "discard, quarantine)."),
    Metric("mailwarden_messages_decided_total", "counter", ("stage",),
           "Messages whose verdict a stage decided, by that stage (for header_checks rules, the rule's "
           "class)."),
    Metric("mailwarden_dkim_results_total", "counter", ("result",),
           "DKIM verification results, one per signature checked; none for a message without one."),
    Metric("mailwarden_spf_results_total", "counter", ("result",), "SPF results."),
    Metric("mailwarden_dmarc_results_total", "counter", ("result",), "DMARC results."),
    Metric("mailwarden_dkim_signatures_total", "counter", ("domain", "algorithm"),
           "DKIM signatures made, by d= (a configured signing domain) and algorithm."),
    Metric("mailwarden_stage_seconds", "histogram", ("stage",), "Time each stage took per message."),
    Metric("mailwarden_dns_queries_total", "counter", ("type",), "DNS queries, by record type."),
    Metric("mailwarden_dns_failures_total", "counter", ("type", "failure"),
           "DNS queries that failed temporarily, by record type and failure (timeout, servfail, other)."),
    Metric("mailwarden_rule_hits_total", "counter", ("class", "rule"),
           "header_checks rules that matched, by class and FILE:LINE (the file's name)."),
    Metric("mailwarden_reloads_total", "counter", ("outcome",),
           "Configuration reloads, by outcome (ok, failed)."),
    Metric("mailwarden_worker_restarts_total", "counter", (),
           "Workers that died and were replaced."),
    Metric("mailwarden_connections_open", "gauge", (), "MTA connections open, over all workers."),
    Metric("mailwarden_report_rows", "gauge", ("outcome",),
           "DMARC report rows recorded since start, by outcome (written to the store, dropped).",
           mode="sum"),
    Metric("mailwarden_report_rows_queued", "gauge", (), "DMARC report rows waiting to be written."),
    Metric("mailwarden_rule_budget", "gauge", ("event",),
           "header_checks time budget events since start: messages whose rule matching ran past [rules] "
           "message_budget (over_budget), rules put aside after repeated timeouts (disabled).",
           mode="sum"),
)

# Bounded label values: anything else counts as "other".
_RESULTS = frozenset({"pass", "fail", "none", "neutral", "softfail", "policy", "temperror", "permerror",
                      "bestguesspass"})
_DNS_TYPES = frozenset({"A", "AAAA", "MX", "TXT", "PTR", "CNAME", "NS", "SOA"})
_STAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                  5.0, 10.0)

_live: dict[str, Any] = {}
_directory: Path | None = None


def enabled() -> bool:
    return bool(_live)


def enable(signing_domains: frozenset[str] = frozenset()) -> Path:
    """Start multiprocess mode in a fresh directory and make the metric objects; returns it.

    The directory is under $RUNTIME_DIRECTORY (systemd's RuntimeDirectory) when set.
    """
    global _directory, _signing_domains
    _directory = Path(tempfile.mkdtemp(prefix="metrics-", dir=os.environ.get("RUNTIME_DIRECTORY")))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_directory)
    import prometheus_client

    for m in METRICS:
        short = m.name.removesuffix("_total")
        if m.kind == "counter":
            _live[m.name] = prometheus_client.Counter(short, m.help, m.labels)
        elif m.kind == "histogram":
            _live[m.name] = prometheus_client.Histogram(short, m.help, m.labels, buckets=_STAGE_BUCKETS)
        else:
            _live[m.name] = prometheus_client.Gauge(short, m.help, m.labels, multiprocess_mode=m.mode)
    _signing_domains = signing_domains
    return _directory


_signing_domains: frozenset[str] = frozenset()


def serve(address: str, port: int) -> None:
    """The endpoint, in a thread of the calling process (the supervisor), which must not get the
    stop signals: they are blocked while it starts, so the thread inherits the mask."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        start_http_server(port, address, registry)
    except OSError as exc:
        raise CommandFailed(f"[metrics] listen {address}:{port}: {exc.strerror}") from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def grant(uid: int, gid: int) -> None:
    """Hand the directory to the workers' user (the supervisor stays root and only reads it)."""
    if _directory is not None:
        os.chown(_directory, uid, gid)


def close() -> None:
    """Remove the directory (at the supervisor's end)."""
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)


def _guard(func: Any) -> Any:
    """A metric must never cost a message: any failure here is dropped."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        if not _live:
            return
        try:
            func(*args, **kwargs)
        except Exception:  # pragma: no cover - a full disk under the directory, say
            pass

    return wrapper


@_guard
def observe(tx: Transaction, outcome: Outcome) -> None:
    """Count one finished message."""
    from mailwarden.adapters.summary import deciding_stage, signatures_made
    from mailwarden.dmarc.result import DmarcResult

    verdict = outcome.verdict.action.value
    _live["mailwarden_messages_total"].labels(tx.direction.value, verdict).inc()
    by = deciding_stage(outcome)
    if by:
        _live["mailwarden_messages_decided_total"].labels(by).inc()
    facts = outcome.facts
    dkim = facts.get(DkimResults)
    if dkim is not None:
        for result in [sig.result.value for sig in dkim.signatures] or ["none"]:
            _live["mailwarden_dkim_results_total"].labels(_bounded(result, _RESULTS)).inc()
    for key, fact in (("spf", facts.get(SpfResult)), ("dmarc", facts.get(DmarcResult))):
        if fact is not None:
            _live[f"mailwarden_{key}_results_total"].labels(_bounded(fact.result.value, _RESULTS)).inc()
    for domain, _, algorithm in signatures_made(outcome):
        label = domain if domain in _signing_domains else "other"
        _live["mailwarden_dkim_signatures_total"].labels(label, algorithm).inc()
    for stage, seconds in outcome.timings.items():
        _live["mailwarden_stage_seconds"].labels(stage).observe(seconds)
    for rule in outcome.rules:
        where = f"{Path(str(rule.get('file', '?'))).name}:{rule.get('line', '?')}"
        _live["mailwarden_rule_hits_total"].labels(str(rule.get("class", "?")), where).inc()
    _report_rows()
    _rule_budget()


def _rule_budget() -> None:
    """This worker's ReDoS budget counts (rules/session.py), as of now."""
    from mailwarden.rules.session import COUNTS

    budget = _live["mailwarden_rule_budget"]
    budget.labels("over_budget").set(COUNTS["messages_over_budget"])
    budget.labels("disabled").set(COUNTS["rules_disabled"])


def _report_rows() -> None:
    """This worker's DMARC report recorder counts, as of now (its writer lags by a second)."""
    from mailwarden.reports.recorder import counters

    counts = counters()
    rows = _live["mailwarden_report_rows"]
    rows.labels("written").set(counts["reports_rows_written"])
    rows.labels("dropped").set(counts["reports_rows_dropped"])
    _live["mailwarden_report_rows_queued"].set(counts["reports_rows_queued"])


@_guard
def connection(delta: int) -> None:
    _live["mailwarden_connections_open"].inc(delta)


def reloaded(ok: bool) -> bool:
    """Count a reload by its outcome; returns `ok`, to wrap the reload's own result."""
    _count_reload(ok)
    return ok


@_guard
def _count_reload(ok: bool) -> None:
    _live["mailwarden_reloads_total"].labels("ok" if ok else "failed").inc()


@_guard
def worker_gone(pid: int) -> None:
    """A worker exited: its share of the live gauges goes; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


@_guard
def worker_restarted() -> None:
    _live["mailwarden_worker_restarts_total"].inc()


@_guard
def _dns(rdtype: str, failure: str | None) -> None:
    kind = _bounded(rdtype.upper(), _DNS_TYPES, upper=True)
    _live["mailwarden_dns_queries_total"].labels(kind).inc()
    if failure is not None:
        _live["mailwarden_dns_failures_total"].labels(kind, failure).inc()


class CountingResolver:
    """A Resolver that counts every query and temporary failure of the one it wraps."""

    def __init__(self, inner: Resolver) -> None:
        self.inner = inner

    def query(self, name: str, rdtype: str) -> DnsAnswer:
        try:
            answer = self.inner.query(name, rdtype)
        except DnsTempError as exc:
            reason = exc.reason.lower()
            failure = "timeout" if "timed out" in reason else "servfail" if "servfail" in reason else "other"
            _dns(rdtype, failure)
            raise
        _dns(rdtype, None)
        return answer

    def txt(self, name: str) -> list[bytes]:
        return [r for r in self.query(name, "TXT").records if isinstance(r, bytes)]


def counted(resolver: Resolver) -> Resolver:
    """`resolver`, counted when metrics are on."""
    return CountingResolver(resolver) if _live else resolver


def _bounded(value: object, allowed: frozenset[str], upper: bool = False) -> str:
    text = str(value).upper() if upper else str(value).lower()
    return text if text in allowed else "other"


def document() -> Iterator[str]:
    """contrib/docs/metrics.md."""
    yield "# Metrics\n"
    yield ("\nGenerated from `mailwarden/metrics.py` (`python -m mailwarden.metrics > "
           "contrib/docs/metrics.md`); a test keeps them equal.\n")
    yield ("\nServed at `http://[metrics] listen/metrics` (off by default; a port alone listens on "
           "loopback), summed over every worker, dead ones included. Labels take values from fixed "
           "sets only: never a sender, a recipient or a sender's domain. "
           "The dashboard [contrib/grafana/mailwarden.json](../grafana/mailwarden.json) uses them.\n")
    yield "\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n"
    for m in METRICS:
        name = m.name + ("_bucket/_sum/_count" if m.kind == "histogram" else "")
        labels = ", ".join(m.labels) or "-"
        yield f"| `{name}` | {m.kind} | {labels} | {m.help} |\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write("".join(document()))
