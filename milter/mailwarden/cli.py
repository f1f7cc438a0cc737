"""The `mailwarden` command: serve, dry-run, check-config, and the features' subcommands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mailwarden import __version__
from mailwarden.config import Config, load
from mailwarden.errors import ConfigError, MailwardenError

if TYPE_CHECKING:
    from mailwarden.bootstrap import Runtime

LOG = logging.getLogger("mailwarden")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (default: embedded defaults)")
    p.add_argument(
        "--zone", action="append", default=[], metavar="FILE",
        help="answer every DNS query from this RFC 1035 master file (repeatable)",
    )
    p.add_argument("--rules-dir", metavar="DIR", help="rule packs folder (default: rules/ of the checkout)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailwarden", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mailwarden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the milter")
    _add_common(serve)
    serve.add_argument("--socket", help="libmilter socket: unix:/path or inet:port@host (overrides config)")
    serve.add_argument("--user", metavar="USER[:GROUP]",
                       help="run the workers as this user (overrides [milter] user and group)")
    serve.set_defaults(func=cmd_serve)

    dry = sub.add_parser(
        "dry-run", help="run the pipeline over .eml files, directories, mbox or Maildir",
        description="Report what the milter would do. Envelope precedence: flag, then derived from the "
        "message (topmost Received, Return-Path, Delivered-To/X-Original-To), then defaults.",
    )
    _add_common(dry)
    dry.add_argument("paths", nargs="+", metavar="PATH")
    dry.add_argument("--json", action="store_true", help="one JSON object per message on stdout")
    dry.add_argument("--write", metavar="DIR", type=Path, help="write each resulting message as .eml")
    dry.add_argument("--client-ip")
    dry.add_argument("--client-name")
    dry.add_argument("--helo")
    dry.add_argument("--mail-from")
    dry.add_argument("--rcpt", action="append", default=[])
    dry.add_argument("--auth-user", help="as if the client authenticated with SASL as this user")
    dry.add_argument("--daemon-name", help="the {daemon_name} macro, e.g. ORIGINATING")
    dry.add_argument("--queue-id")
    dry.add_argument("--jobs", type=int, metavar="N",
                     help="processes to run the messages in (default: the number of CPUs; one with "
                          "--record-reports); the output keeps the input order")
    dry.add_argument("--record-reports", metavar="STORE",
                     help="record each DMARC evaluation in this report store (sqlite:///PATH or "
                     "postgresql://...), dated by the topmost Received header: backfill from archives")
    dry.set_defaults(func=cmd_dry_run)

    check = sub.add_parser("check-config", help="check the configuration and everything it names")
    _add_common(check)
    check.add_argument("--explain", action="store_true",
                       help="print the resolved pipeline: each stage, its phase, what it needs and gives")
    check.set_defaults(func=cmd_check_config)

    example = sub.add_parser("config-example", help="print the annotated configuration with every default")
    example.set_defaults(func=cmd_config_example)

    from mailwarden.dkim.cli import register as dkim_register
    from mailwarden.dmarc.cli import register as dmarc_register
    from mailwarden.reports.cli import register as reports_register
    from mailwarden.rules.cli import register as rules_register

    for register in (rules_register, dkim_register, dmarc_register, reports_register):
        register(sub)
    return parser


def _runtime(args: argparse.Namespace) -> tuple[Config, Runtime]:
    from mailwarden.bootstrap import build_runtime

    config = load(args.config)
    rules_dir = Path(args.rules_dir) if getattr(args, "rules_dir", None) else None
    return config, build_runtime(config, zones=args.zone, rules_dir=rules_dir)


def cmd_serve(args: argparse.Namespace) -> int:
    from mailwarden import logsetup

    config = load(args.config)
    logsetup.setup(config.milter.log_level)
    from mailwarden.adapters.process.serve import SocketError, serve
    from mailwarden.adapters.process.sockets import SocketInUse, refuse_if_served
    from mailwarden.adapters.pymilter import RuntimeHolder
    from mailwarden.bootstrap import build_runtime
    from mailwarden.reports.store import prepare as prepare_store

    rules_dir = Path(args.rules_dir) if args.rules_dir else None
    socket_spec = args.socket or config.milter.socket
    try:
        refuse_if_served(socket_spec)  # before the rule packs and keys: a clash shows at once
        runtime = build_runtime(config, zones=args.zone, rules_dir=rules_dir)
        LOG.info("starting: config %s, %d stages: %s", config.source, len(runtime.pipeline.stages),
                 " ".join(s.name for s in runtime.pipeline.stages))
        # SIGHUP reloads the same files: the config, the zones and rules named on the command line.
        user, group = args.user.partition(":")[::2] if args.user else (None, None)
        prepare_store(config.reports.store, user or config.milter.user)  # before workers drop to it
        return serve(RuntimeHolder(runtime), socket_spec,
                     lambda: build_runtime(load(args.config), zones=args.zone, rules_dir=rules_dir),
                     user=user, group=group)
    except (SocketInUse, SocketError) as exc:
        print(f"mailwarden: {exc}", file=sys.stderr)
        return 1


def cmd_dry_run(args: argparse.Namespace) -> int:
    from mailwarden import logsetup
    from mailwarden.adapters.dryrun import EnvelopeFlags, run

    _, runtime = _runtime(args)
    logsetup.setup("warning")
    flags = EnvelopeFlags(
        client_ip=args.client_ip, client_name=args.client_name, helo=args.helo, mail_from=args.mail_from,
        rcpts=tuple(args.rcpt), auth_user=args.auth_user, daemon_name=args.daemon_name,
        queue_id=args.queue_id,
    )
    from mailwarden.adapters.dryrun_jobs import default_jobs

    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        print("mailwarden: --jobs must be at least 1", file=sys.stderr)
        return 2
    if not args.record_reports:
        return run(runtime, args.paths, flags, as_json=args.json, write_dir=args.write, jobs=jobs)
    from mailwarden.reports.recorder import Recorder

    recorder = Recorder(args.record_reports, block=True)
    status = run(runtime, args.paths, flags, as_json=args.json, write_dir=args.write, recorder=recorder)
    recorder.close(timeout=600)
    counts = recorder.counters()
    print(f"mailwarden dry-run: {counts['reports_rows_written']} report rows recorded, "
          f"{counts['reports_rows_dropped']} dropped", file=sys.stderr)
    return status if not counts["reports_rows_dropped"] else max(status, 1)


def cmd_check_config(args: argparse.Namespace) -> int:
    config, runtime = _runtime(args)
    stages = runtime.pipeline.stages
    print(f"{config.source}: OK ({len(stages)} stages: {' '.join(s.name for s in stages)})")
    if args.explain:
        from mailwarden.bootstrap import build_env, explain

        for line in explain(build_env(config, args.zone)):
            print("  " + line)
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    from mailwarden.config.example import render

    sys.stdout.write(render(Config()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mailwarden: {problem}", file=sys.stderr)
        return 2
    except MailwardenError as exc:
        print(f"mailwarden: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
