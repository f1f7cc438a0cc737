"""The soak's CI variant (bench/soak.py): 20,000 messages at c=32, inbound and outbound, new and
reused connections, live resolver against a loopback DNS server, after 10,000 to warm up: at rest
afterwards, every worker holds no more threads or descriptors than at rest after the warm-up; the
RSS sampled as it ran grows less than 5%; no error, no worker replaced. (A long run's curves:
the soak section of bench/RESULTS.md.)"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import soak  # noqa: E402


def test_twenty_thousand_messages_leave_the_workers_flat() -> None:
    result = soak.soak(20_000, concurrency=32, every=0.25, warmup=10_000)
    assert result.messages == 20_000, result.errors[:5]
    assert len({s.pid for s in result.samples}) >= 1
    assert result.back_at_rest(), result.summary()
    assert result.rss_flat(), result.summary()


def test_flatness_sees_growth() -> None:
    """The long run's check itself: an RSS that keeps growing, or a descriptor leaked per sample,
    fails."""
    def samples(rss: list[int], fds: list[int]) -> soak.Result:
        pairs = enumerate(zip(rss, fds, strict=True))
        return soak.Result(samples=[soak.Sample(i, i, 1, r, 20, f) for i, (r, f) in pairs])

    steady = [100_000 + (i % 3) for i in range(40)]
    assert samples(steady, [30] * 40).flat()
    assert not samples([100_000 + 500 * i for i in range(40)], [30] * 40).flat()
    assert not samples(steady, [30 + i for i in range(40)]).flat()
