"""Soak: many messages through `mailwarden serve`, its workers' memory, threads and descriptors
sampled as they go; after warm-up they must stay flat (issue 17).

Traffic: `--concurrency` clients, each connection inbound (a documentation-net client, SPF and
DMARC looked up) or outbound (127.0.0.1, trusted) at random, one message per connection or 50 on
a reused one. The live resolver asks a loopback DNS server
(tests/dmarc/loopdns.py) that answers from a zone. Flat means: over the samples after the first
20% (warm-up), the mean of the last quarter is within 5% of the mean of the first quarter, for
every worker's RSS, and the highest thread count and descriptor count of the last quarter within
5% (or of one more) of the highest of the first (they follow the momentary number of connections,
so their peaks are compared, not their means); zero errors; no worker replaced.

    python bench/soak.py --messages 1000000 --concurrency 32 --every 10 --record bench/soak.json

tests/reliability/test_soak.py runs 20,000 messages in CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import random
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "milter"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tests.dmarc.loopdns import LoopbackDns  # noqa: E402
from tests.reliability.procs import Usage, children, usage  # noqa: E402
from tests.reliability.serve import LiveDnsMailwarden  # noqa: E402
from tests.support.milterclient import MilterClient  # noqa: E402

from mailwarden.adapters.process.workers import worker_count  # noqa: E402
from mailwarden.config.base import MilterSection  # noqa: E402
from mailwarden.resolver.static import StaticZone  # noqa: E402

DOMAINS = [f"d{i}.soak.test" for i in range(20)]
ZONE = "$TTL 300\n" + "".join(
    f'{d}. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"\n_dmarc.{d}. IN TXT "v=DMARC1; p=none"\n' for d in DOMAINS
)
METRICS = ("rss_kb", "threads", "fds")
GROWTH = 0.05


@dataclass
class Sample:
    t: float
    done: int
    pid: int
    rss_kb: int
    threads: int
    fds: int


@dataclass
class Result:
    messages: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    workers_replaced: bool = False
    seconds: float = 0.0
    quiet_before: dict[int, Usage] = field(default_factory=dict)
    """Each worker at rest (no connection open) after the warm-up, and at the end."""
    quiet_after: dict[int, Usage] = field(default_factory=dict)

    def growth(self) -> dict[tuple[int, str], float]:
        """Per worker and metric: the last quarter of the samples after warm-up against the first
        quarter (RSS: their means; threads and descriptors: their peaks), as a fraction."""
        out: dict[tuple[int, str], float] = {}
        for pid in sorted({s.pid for s in self.samples}):
            series = [s for s in self.samples if s.pid == pid]
            window = series[len(series) // 5:]
            quarter = max(len(window) // 4, 1)
            for metric in METRICS:
                head = [getattr(s, metric) for s in window[:quarter]]
                tail = [getattr(s, metric) for s in window[-quarter:]]
                if metric == "rss_kb":
                    first, last = sum(head) / len(head), sum(tail) / len(tail)
                else:
                    first, last = max(head), max(tail)
                out[(pid, metric)] = last / max(first, 1) - 1
        return out

    def flat(self) -> bool:
        return not self.errors and not self.workers_replaced and all(
            g <= max(GROWTH, self._one(pid, m)) for (pid, m), g in self.growth().items())

    def back_at_rest(self) -> bool:
        """At rest after the run, every worker holds no more descriptors or threads than at rest
        after the warm-up: no connection's thread or descriptor stayed behind. (RSS at rest keeps
        rising for the first ~130,000 messages, to a plateau: the soak section of bench/RESULTS.md.)"""
        return not self.errors and not self.workers_replaced and all(
            pid in self.quiet_after
            and self.quiet_after[pid].fds <= before.fds
            and self.quiet_after[pid].threads <= before.threads
            for pid, before in self.quiet_before.items())

    def rss_flat(self) -> bool:
        return all(g <= GROWTH for (_, metric), g in self.growth().items() if metric == "rss_kb")

    def _one(self, pid: int, metric: str) -> float:
        """One thread or descriptor more, as a fraction: the jitter of small counts."""
        if metric == "rss_kb":
            return 0.0
        peak = max((getattr(s, metric) for s in self.samples if s.pid == pid), default=1)
        return 1 / max(peak - 1, 1)

    def summary(self) -> str:
        rate = self.messages / max(self.seconds, 1e-9)
        grown = ", ".join(f"{pid}/{m} {g:+.1%}" for (pid, m), g in self.growth().items())
        return (f"{self.messages} messages in {self.seconds:.0f}s ({rate:.0f}/s), {len(self.errors)} errors,"
                f" workers replaced: {self.workers_replaced}; growth after warm-up: {grown};"
                f" at rest before {self.quiet_before}, after {self.quiet_after}")


def message(i: int, domain: str) -> bytes:
    return (f"From: a@{domain}\r\nTo: b@rcpt.test\r\nSubject: soak {i}\r\nMessage-ID: <{i}@{domain}>\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n" + "soak body line\r\n" * (i % 40 + 1)).encode()


def all_workers(supervisor: int, timeout: float = 10.0) -> list[int]:
    """The workers once all of them are forked: the service answers as soon as the first one
    serves, and the list is what "no worker replaced" is judged against."""
    expected = worker_count(MilterSection().workers)
    deadline = time.monotonic() + timeout
    while len(found := sorted(children(supervisor))) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def at_rest(workers: list[int]) -> dict[int, Usage]:
    """Each worker's usage once every connection has closed (libmilter notices within a moment)."""
    time.sleep(1.0)
    return {pid: usage(pid) for pid in workers}


def soak(messages: int, concurrency: int = 32, every: float = 10.0, seed: int = 17,
         warmup: int = 10_000) -> Result:
    dns = LoopbackDns(StaticZone.from_text(ZONE))
    config = f'[dns]\nnameservers = ["{dns.address}"]\n[hopcount]\nlimit = 0\n'
    served = LiveDnsMailwarden(config=config)
    result = Result()
    lock = threading.Lock()
    counter = iter(range(warmup))
    stop = threading.Event()
    try:
        served.start()
        assert served.proc is not None
        supervisor = served.proc.pid
        workers = all_workers(supervisor)

        def client(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            conn: MilterClient | None = None
            left = 0
            addr = ""
            for i in counter:
                if stop.is_set():
                    break
                try:
                    if conn is None or left == 0:
                        if conn is not None:
                            conn.quit()
                            conn.close()
                        conn = MilterClient.connect(served.spec, timeout=60)
                        conn.optneg()
                        left = rng.choice([1, 1, 50])  # per-message, or a reused connection
                        # inbound from a documentation net (SPF, DMARC looked up), or outbound
                        addr = rng.choice([f"192.0.2.{rng.randrange(1, 250)}", "127.0.0.1"])
                    domain = rng.choice(DOMAINS)
                    res = conn.send_message(message(i, domain), f"<a@{domain}>",
                                            connect=None if conn.connected else {"addr": addr})
                    left -= 1
                    if res.verdict not in ("accept", "continue"):
                        raise RuntimeError(f"verdict {res}")
                    with lock:
                        result.messages += 1
                except Exception as exc:  # counted: the soak must see none
                    with lock:
                        result.errors.append(f"message {i}: {type(exc).__name__}: {exc}")
                    if conn is not None:
                        conn.close()
                    conn, left = None, 0
            if conn is not None:
                conn.close()

        def sampler() -> None:
            while not stop.wait(every):
                now = sorted(children(supervisor))
                if now != workers:
                    result.workers_replaced = True
                for pid in now:
                    try:
                        u = usage(pid)
                    except OSError:
                        continue
                    result.samples.append(Sample(time.monotonic() - started, result.messages, pid,
                                                 u.rss_kb, u.threads, u.fds))

        def run() -> None:
            threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                # More than 1,000 errors: the server is gone; stop rather than spin.
                while t.is_alive() and len(result.errors) <= 1000:
                    t.join(1.0)

        run()  # warm-up: caches, libmilter's thread pool, the allocator's arenas
        result.quiet_before = at_rest(workers)
        result.messages = 0
        counter = iter(range(warmup, warmup + messages))
        started = time.monotonic()
        watch = threading.Thread(target=sampler, daemon=True)
        watch.start()
        run()
        result.seconds = time.monotonic() - started
        result.quiet_after = at_rest(workers)
        # Why a worker went, in the service's own words (a crash, a reload), beside the verdict.
        result.errors += [line for line in served.log().splitlines()
                          if "starting another" in line or "reloading" in line]
    finally:
        stop.set()
        served.close()
        dns.close()
    return result


def record(result: Result, argv: list[str]) -> dict[str, object]:
    """The run as bench/run.py renders it: what was run, when, the verdicts and every sample."""
    return {
        "command": shlex.join([".venv/bin/python", "bench/soak.py", *argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "messages": result.messages, "seconds": result.seconds, "errors": len(result.errors),
        "workers_replaced": result.workers_replaced, "flat": result.flat(),
        "back_at_rest": result.back_at_rest(),
        "growth": [{"pid": pid, "metric": m, "growth": g} for (pid, m), g in result.growth().items()],
        "at_rest": {"after_warmup": {str(p): dataclasses.asdict(u) for p, u in result.quiet_before.items()},
                    "at_end": {str(p): dataclasses.asdict(u) for p, u in result.quiet_after.items()}},
        "samples": [dataclasses.asdict(s) for s in result.samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--csv", type=Path, help="write the samples here")
    parser.add_argument("--record", type=Path,
                        help="write the run (command, summary, samples) here as JSON; bench/run.py "
                             "puts bench/soak.json's curves in bench/RESULTS.md")
    args = parser.parse_args()
    result = soak(args.messages, args.concurrency, args.every)
    if args.record is not None:
        args.record.write_text(json.dumps(record(result, sys.argv), indent=1) + "\n")
    if args.csv is not None:
        lines = ["t,done,pid," + ",".join(METRICS)]
        lines += [f"{s.t:.1f},{s.done},{s.pid},{s.rss_kb},{s.threads},{s.fds}" for s in result.samples]
        args.csv.write_text("\n".join(lines) + "\n")
    print(result.summary())
    for e in result.errors[:10]:
        print("error:", e)
    return 0 if result.flat() and result.back_at_rest() else 1


if __name__ == "__main__":
    sys.exit(main())
