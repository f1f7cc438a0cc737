"""The soak's section of bench/RESULTS.md, from what `bench/soak.py --record bench/soak.json` kept:
the verdicts, a curve per worker and metric, and a table of the samples at even steps."""

from __future__ import annotations

from typing import Any

BARS = "▁▂▃▄▅▆▇█"
METRICS = (("rss_kb", "RSS kB"), ("threads", "threads"), ("fds", "descriptors"))


def spark(values: list[int], width: int = 48) -> str:
    """The series squeezed to `width` points, each drawn as a bar between the series' min and max."""
    if not values:
        return ""
    step = max(len(values) / width, 1)
    points = [values[int(i * step)] for i in range(min(width, len(values)))]
    low, high = min(points), max(points)
    span = max(high - low, 1)
    return "".join(BARS[(v - low) * (len(BARS) - 1) // span] for v in points)


def by_worker(samples: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        out.setdefault(s["pid"], []).append(s)
    return out


def curves(workers: dict[int, list[dict[str, Any]]]) -> list[str]:
    lines = ["| worker | metric | min | max | curve (time ->) |", "|---|---|---|---|---|"]
    for n, (_, series) in enumerate(sorted(workers.items())):
        for key, label in METRICS:
            values = [s[key] for s in series]
            name = chr(65 + n)
            lines.append(f"| {name} | {label} | {min(values):,} | {max(values):,} | `{spark(values)}` |")
    return lines


def steps(workers: dict[int, list[dict[str, Any]]], rows: int = 12) -> list[str]:
    names = [chr(65 + n) for n in range(len(workers))]
    series = [s for _, s in sorted(workers.items())]
    length = min(len(s) for s in series)
    head = "| t | messages | " + " | ".join(f"worker {n} rss kB/threads/fds" for n in names) + " |"
    lines = [head, "|---|---|" + "---|" * len(names)]
    for i in sorted({round(k * (length - 1) / (rows - 1)) for k in range(rows)}):
        first = series[0][i]
        cells = " | ".join(f"{s[i]['rss_kb']}/{s[i]['threads']}/{s[i]['fds']}" for s in series)
        lines.append(f"| {first['t']:.0f} s | {first['done']:,} | {cells} |")
    return lines


def at_rest(workers: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{chr(65 + n)} {u['rss_kb']:,} kB RSS, {u['threads']} threads, {u['fds']} descriptors"
                     for n, (_, u) in enumerate(sorted(workers.items())))


def section(soak: dict[str, Any]) -> list[str]:
    rate = soak["messages"] / max(soak["seconds"], 1e-9)
    grown = max((g["growth"] for g in soak["growth"] if g["metric"] == "rss_kb"), default=0.0)
    verdict = "flat" if soak["flat"] and soak["back_at_rest"] else "NOT flat"
    workers = by_worker(soak["samples"])
    rest = soak["at_rest"]
    return [
        "## Soak (issue 17)", "",
        f"Run on {soak['date']} (load average after: {soak['load_after']}):", "",
        f"    {soak['command']}", "",
        f"- {soak['messages']:,} messages in {soak['seconds']:.0f} s ({rate:,.0f}/s), "
        f"{soak['errors']} errors, workers replaced: {'yes' if soak['workers_replaced'] else 'no'}.",
        f"- After warm-up: **{verdict}** (RSS within 5%: largest growth {grown:+.1%}, mean of the last "
        "quarter of the samples against the first; thread and descriptor peaks within 5% or one; "
        "back at rest with no more threads or descriptors than after the warm-up).",
        f"- At rest (no connection open) after the warm-up: {at_rest(rest['after_warmup'])}; "
        f"at the end: {at_rest(rest['at_end'])}.",
        "- How the soak is driven and judged: bench/soak.py's docstring.", "",
        "Each curve runs from its row's min (lowest bar) to its max (highest): the whole height of "
        "an RSS curve is under 1 MB here. Threads and descriptors follow the connections open at "
        "the moment of the sample.", "",
        *curves(workers), "",
        *steps(workers), "",
    ]
