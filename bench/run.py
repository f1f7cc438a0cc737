"""`make bench`: run every benchmark and write bench/RESULTS.md, one table of all rows.

    .venv/bin/python bench/run.py [--messages 1500] [--rounds 3] [--only dkim pipeline ...]
                                  [--output bench/RESULTS.md]

Each benchmark module gives rows (_milters.Row): mailwarden against its reference, measured in the
same run in interleaved rounds. RESULTS.md gets the date, the machine, the load average, the
exact commands, the table, and then bench/findings.md (the profile and what the figures mean,
written by hand) verbatim, and the soak's curves from bench/soak.json (bench/soak.py --record).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import dkim_bench
import dryrun_bench
import inet_bench
import pipeline_bench
import soak_render
from _milters import Measured, Round, Row

HERE = Path(__file__).resolve().parent
MODULES: dict[str, ModuleType] = {"dkim": dkim_bench, "pipeline": pipeline_bench, "dryrun": dryrun_bench,
                                  "inet": inet_bench}


def machine() -> str:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    usable = len(os.sched_getaffinity(0))
    return f"{os.cpu_count()} CPUs ({usable} usable), {model}; Linux {platform.release()}"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cell(values: list[float], fmt: str) -> str:
    return " / ".join("-" if math.isnan(v) else format(v, fmt) for v in values)


def table(rows: list[Row]) -> list[str]:
    out = ["| row | reference | msg/s mailwarden best (median) | msg/s reference best (median) "
           "| ratio best (median) | p50 ms mw / ref | p99 ms mw / ref | CPU ms/msg mw / ref "
           "| peak RSS MB mw / ref | target |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mw, ref = row.sides
        p50, p99 = [mw.mid("p50"), ref.mid("p50")], [mw.mid("p99"), ref.mid("p99")]
        target = []
        if row.min_ratio is not None:
            target.append(f"ratio >= {row.min_ratio}")
        if row.max_p99_ms is not None:
            target.append(f"p99 < {row.max_p99_ms:g} ms")
        verdict = row.verdict()
        out.append(
            f"| {row.name} | {ref.label} | {mw.best:,.0f} ({mw.median:,.0f}) "
            f"| {ref.best:,.0f} ({ref.median:,.0f}) | {row.ratio:.2f} ({row.ratio_median:.2f}) "
            f"| {cell(p50, '.1f')} | {cell(p99, '.1f')} "
            f"| {cell([mw.mid('cpu_ms'), ref.mid('cpu_ms')], '.3f')} "
            f"| {cell([mw.rss_mb, ref.rss_mb], '.0f')} | {' and '.join(target) or '-'}"
            f"{': **' + verdict + '**' if verdict else ''} |")
    return out


def summary(rows: list[Row]) -> list[str]:
    judged = [r for r in rows if r.verdict()]
    missed = [r for r in judged if r.verdict() != "met"]
    out = [f"Targets: {len(judged) - len(missed)} of {len(judged)} rows met."]
    out += [f"- Not met: {r.name} ({r.verdict().removeprefix('NOT met: ')})." for r in missed]
    out += ["", "Notes:"] + [f"- {r.name}: {r.note}." for r in rows if r.note]
    return out


def render(meta: dict[str, Any], rows: list[Row]) -> str:
    text = [
        "# Benchmarks", "",
        f"Written by `make bench` ({meta['invocation']}) on {meta['date']}, "
        f"in {meta['minutes']:.0f} min.", "",
        f"- Machine: {meta['machine']}.",
        f"- Load average (1, 5, 15 min) before: {meta['load_before']}; after: {meta['load_after']}.",
        "- Each row: mailwarden against its reference in the same run; a warm-up each, then "
        f"{meta['rounds']} rounds taking the sides in turn, {meta['messages']} messages per round (dry-run: "
        "its own count). Messages/s: best and median of the rounds; the ratio is best against best "
        "(median against median in brackets). p50, p99 and CPU per message (the milters' whole "
        "process trees, user + system, not the load generator's): medians of the rounds. Peak RSS: "
        "the sum of the tree's processes' peaks over the rounds.",
        "- Commands (run from the checkout; each also runs alone, `--help` for its rows):", "",
        *(f"      {c}" for c in meta["commands"]), "",
        *table(rows), "",
        *summary(rows), "",
        "Rows and how each is driven: the docstrings of the bench modules named above. The "
        "measurements are in bench/results.json (`bench/run.py --render` rewrites this file from "
        "them and bench/findings.md).", "",
    ]
    findings = HERE / "findings.md"
    if findings.exists():
        text += [findings.read_text()]
    soak = HERE / "soak.json"
    if soak.exists():  # written by bench/soak.py --record: too long for make bench, run on its own
        text += soak_render.section(json.loads(soak.read_text()))
    return "\n".join(text)


def save(path: Path, meta: dict[str, Any], rows: list[Row]) -> None:
    data = {"meta": meta, "rows": [dataclasses.asdict(r) for r in rows]}
    path.write_text(json.dumps(data, indent=1) + "\n")


def restore(path: Path) -> tuple[dict[str, Any], list[Row]]:
    data = json.loads(path.read_text())
    rows = []
    for r in data["rows"]:
        sides = [Measured(m["label"], [Round(**x) for x in m["rounds"]], m["rss_mb"]) for m in r.pop("sides")]
        rows.append(Row(sides=sides, **r))
    return data["meta"], rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1500, help="messages per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="+", choices=sorted(MODULES), default=list(MODULES))
    ap.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: rewrite the output from bench/results.json and bench/findings.md")
    args = ap.parse_args()
    saved = args.output.with_name("results.json")
    if args.render:
        meta, kept = restore(saved)
        args.output.write_text(render(meta, kept))
        print(f"wrote {args.output}")
        return 0
    started, load_before = time.monotonic(), load()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: list[Row] = []
    commands = []
    for name in args.only:
        module = MODULES[name]
        print(f"== {name}", flush=True)
        # dry-run keeps its own count (the issue's 10,000); the milter rows take --messages.
        argv = ["--rounds", str(args.rounds)]
        if name != "dryrun":
            argv += ["--messages", str(args.messages)]
        rows += module.rows(module.parser().parse_args(argv))
        commands.append(shlex.join([".venv/bin/python", f"bench/{Path(module.__file__ or '').name}", *argv]))
    meta = {"invocation": shlex.join(["bench/run.py", *sys.argv[1:]]), "date": date,
            "minutes": (time.monotonic() - started) / 60, "machine": machine(), "load_before": load_before,
            "load_after": load(), "rounds": args.rounds, "messages": args.messages, "commands": commands}
    save(saved, meta, rows)
    args.output.write_text(render(meta, rows))
    print(f"wrote {args.output} and {saved}")
    return 0  # a target missed is reported in the table, not an error


if __name__ == "__main__":
    sys.exit(main())
