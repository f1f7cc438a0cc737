"""`mailwarden rules check [PATH...]` and `mailwarden rules test TABLE... [--body] < message`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailwarden.rules.loader import CLASSES, load_table, pack_files
from mailwarden.rules.matcher import Matcher
from mailwarden.rules.postmap import split_message
from mailwarden.rules.table import ParsedTable, kind_for


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this feature's subcommands; each sets `func` (args -> exit status) as its default."""
    rules = subparsers.add_parser("rules", help="check and test header_checks rule packs")
    sub = rules.add_subparsers(dest="rules_command", required=True)
    check = sub.add_parser("check", help="report every bad rule as file:line:column: reason")
    check.add_argument("paths", nargs="*", help="table files or rule directories (default: the rule packs)")
    check.add_argument("--config", help="mailwarden.toml (for [rules] directories)")
    check.set_defaults(func=run_check)
    test = sub.add_parser("test", help="look up a message read from stdin, printing what postmap -hq prints")
    test.add_argument("tables", nargs="+", help="table files; .regexp files are regexp: tables, others pcre:")
    test.add_argument("--body", "-b", action="store_true", help="look up body lines (postmap -bq)")
    test.add_argument("--headers", action="store_true", help="with --body: headers too (postmap -hbq)")
    test.set_defaults(func=run_test)


def _warn(table: ParsedTable) -> None:
    for p in table.problems:
        where = f"{table.kind.value} map {table.path}, line {p.line}"
        sys.stderr.write(f"mailwarden: warning: {where}: {p.reason}\n")


def run_test(args: argparse.Namespace) -> int:
    tables = [load_table(t) for t in args.tables]
    for t in tables:
        _warn(t)
    output, status = query(tables, sys.stdin.buffer.read(), not args.body or args.headers, args.body)
    sys.stdout.buffer.write(output)
    sys.stdout.buffer.flush()
    return status


def query(tables: list[ParsedTable], message: bytes, headers: bool, body: bool) -> tuple[bytes, int]:
    """What `postmap -hq - TABLE...` (headers) / `-bq` (body) prints for `message`, and its exit status."""
    matchers = [Matcher([t]) for t in tables]
    head, lines = split_message(message)
    keys = (head if headers else []) + (lines if body else [])
    out = bytearray()
    for key in keys:
        for m in matchers:
            hit = m.lookup(key)
            if hit is not None:
                out += key + b"\t" + hit.result + b"\n"
                break
    return bytes(out), 0 if out else 1


def check_paths(paths: list[str], default_dirs: list[Path]) -> list[ParsedTable]:
    files: list[Path] = []
    if not paths:
        for klass in CLASSES:
            files.extend(pack_files(default_dirs, klass))
    for p in map(Path, paths):
        if p.is_dir():
            nested = [f for klass in CLASSES for f in pack_files([p], klass)]
            direct = sorted(f for f in p.iterdir() if f.is_file() and kind_for(f.name))
            files.extend(nested or direct)
        else:
            files.append(p)
    return [load_table(f) for f in files]


def run_check(args: argparse.Namespace) -> int:
    from mailwarden.rules.build import rule_dirs

    dirs: list[Path] = []
    if not args.paths:
        from mailwarden import config as config_mod
        from mailwarden.bootstrap import default_rules_dir

        cfg = config_mod.load(args.config)
        dirs = rule_dirs(cfg.rules, default_rules_dir())
    tables = check_paths(args.paths, dirs)
    errors = warnings = rules = 0
    for t in tables:
        rules += len(t.rules)
        for p in sorted(t.problems, key=lambda p: p.line):
            if p.skipped:
                errors += 1
                print(str(p))
            else:
                warnings += 1
                hint = f" ({p.hint})" if p.hint else ""
                print(f"{p.path}:{p.line}:{p.column}: warning: {p.reason}{hint}")
    summary = f"{len(tables)} table(s), {rules} rule(s), {errors} error(s), {warnings} warning(s)"
    print(summary, file=sys.stderr)
    # Exit 1 for a warning too: each one is a rule that does not do what it says (Postfix's own
    # warnings, and rules that can never act in the milter).
    return 1 if errors or warnings else 0
