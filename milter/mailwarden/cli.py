"""The `mailwarden` command: serve, dry-run, check-config, and the features' subcommands.

Every failure is one line on stderr, `mailwarden: ...`, and an exit status from EXIT_STATUSES; a
Python traceback is a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import textwrap
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from mailwarden import __version__
from mailwarden.config import Config, load
from mailwarden.errors import CommandFailed, ConfigError, MailwardenError

if TYPE_CHECKING:
    from mailwarden.bootstrap import Runtime

LOG = logging.getLogger("mailwarden")

# Shown by --help and in README.md (a test keeps them equal).
EXIT_STATUSES = (
    (0, "success (check-keys: every key published; dry-run: every message processed)"),
    (1, "the command ran and failed: a message or file it had to read or write, a socket it had "
        "to open, a key not published, a bad rule"),
    (2, "usage or configuration error: bad arguments, a config, zone, key or rule pack that "
        "cannot be read or is invalid"),
    (130, "interrupted (SIGINT)"),
)


def exit_status_text() -> str:
    """The exit statuses as --help shows them (and README.md, under "Exit status")."""
    lines = ["exit status:"]
    for code, text in EXIT_STATUSES:
        lines += textwrap.wrap(text, 96, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line: `mailwarden: COMMAND: problem (see --help)`."""

    def error(self, message: str) -> typing.NoReturn:
        command = self.prog.removeprefix("mailwarden").strip()
        self.exit(2, f"mailwarden: {command + ': ' if command else ''}{message} (see --help)\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (default: embedded defaults)")
    p.add_argument(
        "--zone", action="append", default=[], metavar="FILE",
        help="answer every DNS query from this RFC 1035 master file (repeatable)",
    )
    p.add_argument("--rules-dir", metavar="DIR", help="rule packs folder (default: rules/ of the checkout)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailwarden", description=__doc__.split("\n\n")[0], epilog=exit_status_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

    init = sub.add_parser(
        "init", help="lay out /etc/mailwarden and the systemd unit, overwriting nothing",
        description="Writes /etc/mailwarden/mailwarden.toml (the annotated example), rules/ (the "
        "packaged rule packs), keys/ (mode 0700) and the systemd units in /etc/systemd/system "
        "(starting this installation's mailwarden); keeps every file that exists.",
    )
    init.add_argument("--prefix", type=Path, default=Path("/"), metavar="DIR",
                      help="staging root to lay out under (default /); the files still name /etc")
    init.set_defaults(func=cmd_init)

    example = sub.add_parser("config-example", help="print the annotated configuration with every default")
    example.set_defaults(func=cmd_config_example)

    from mailwarden.dkim.cli import register as dkim_register
    from mailwarden.dmarc.cli import register as dmarc_register
    from mailwarden.reports.cli import register as reports_register
    from mailwarden.rules.cli import register as rules_register

    for register in (rules_register, dkim_register, dmarc_register, reports_register):
        register(typing.cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub))
    return parser


def _runtime(args: argparse.Namespace) -> tuple[Config, Runtime]:
    from mailwarden.bootstrap import build_runtime

    config = load(args.config)
    return config, build_runtime(config, zones=args.zone, rules_dir=_rules_dir(args))


def _rules_dir(args: argparse.Namespace) -> Path | None:
    if not args.rules_dir:
        return None
    path = Path(args.rules_dir)
    if not path.is_dir():
        raise MailwardenError(f"--rules-dir {path}: not a directory")
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    from mailwarden import logsetup, metrics
    from mailwarden.adapters.process.serve import SocketError, serve
    from mailwarden.adapters.process.sockets import SocketInUse, refuse_if_served
    from mailwarden.adapters.process.workers import worker_count
    from mailwarden.adapters.pymilter import RuntimeHolder
    from mailwarden.bootstrap import build_runtime, default_rules_dir
    from mailwarden.reports.store import prepare as prepare_store
    from mailwarden.rules.build import rule_dirs
    from mailwarden.socketspec import bind_problem
    from mailwarden.startline import rules_source, startup_line

    config = load(args.config)
    socket_spec = _socket_spec(args.socket, config)
    rules_dir = _rules_dir(args) or default_rules_dir()
    try:
        refuse_if_served(socket_spec)  # before the rule packs and keys: a clash shows at once
        logsetup.setup(config.milter.log_level, section=config.log)
        if config.metrics.listen:  # before anything counts: the resolver is wrapped when built
            metrics.enable(frozenset(k.domain.lower().rstrip(".") for k in config.dkim.keys.values()))
        runtime = build_runtime(config, zones=args.zone, rules_dir=rules_dir)
        workers = worker_count(config.milter.workers)
        LOG.info("%s", startup_line(config, runtime, rules_dir, args.zone, workers))
        if rules_source(config, rules_dir) == "none":
            LOG.warning("no rule packs: outbound privacy stripping is off (see [rules] and --rules-dir)")
        if config.metrics.listen:
            _serve_metrics(config.metrics.listen)
        # SIGHUP reloads the same files: the config, the zones and rules named on the command line.
        user, group = args.user.partition(":")[::2] if args.user else (None, None)
        prepare_store(config.reports.store, user or config.milter.user)  # before workers drop to it
        holder = RuntimeHolder(runtime)
        return serve(holder, socket_spec,
                     lambda: build_runtime(load(args.config), zones=args.zone, rules_dir=rules_dir),
                     user=user, group=group,
                     rule_dirs=lambda: rule_dirs(holder.current.config.rules, rules_dir)
                     if holder.current.config.rules.enabled else [])
    except SocketInUse as exc:
        raise CommandFailed(str(exc)) from None
    except SocketError as exc:  # libmilter says only "cannot opensocket": add what we know
        why = bind_problem(socket_spec)
        raise CommandFailed(f"serve on {socket_spec}: {why}" if why else str(exc)) from None
    finally:
        metrics.close()


def _serve_metrics(listen: str) -> None:
    """The metrics endpoint, a thread of this process (the supervisor)."""
    from mailwarden import metrics
    from mailwarden.config.metrics import split_listen

    address, port = split_listen(listen)
    metrics.serve(address, port)
    LOG.info("metrics on http://%s/metrics", f"[{address}]:{port}" if ":" in address else f"{address}:{port}")


def _socket_spec(flag: str | None, config: Config) -> str:
    """The socket to serve on, checked: a usage error for --socket, a config error otherwise."""
    from mailwarden.socketspec import problem

    if flag is not None:
        bad = problem(flag)
        if bad:
            raise MailwardenError(f"--socket {bad}")
        return flag
    bad = problem(config.milter.socket)
    if bad:
        raise ConfigError([f"{config.source}: milter.socket: {bad}"])
    return config.milter.socket


def cmd_dry_run(args: argparse.Namespace) -> int:
    from mailwarden import logsetup
    from mailwarden.adapters.dryrun import EnvelopeFlags, run

    _, runtime = _runtime(args)
    if args.write is not None:
        _make_dir(args.write, "--write")
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


def _make_dir(path: Path, what: str) -> None:
    """Create the output directory `path` (and parents) or fail with the reason."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".mailwarden-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise CommandFailed(f"{what} {path}: cannot write there: {exc.strerror}") from None


def cmd_check_config(args: argparse.Namespace) -> int:
    config, runtime = _runtime(args)
    stages = runtime.pipeline.stages
    print(f"{config.source}: OK ({len(stages)} stages: {' '.join(s.name for s in stages)})")
    if args.explain:
        from mailwarden.bootstrap import build_env, explain

        for line in explain(build_env(config, args.zone)):
            print("  " + line)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from mailwarden.layout import lay_out

    for what, path in lay_out(args.prefix):
        print(f"{what:5} {path}{'/' if path.is_dir() else ''}")
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
            _say(problem)
        return 2
    except CommandFailed as exc:
        _say(str(exc))
        return 1
    except MailwardenError as exc:
        _say(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailwarden dry-run ... | head`: the reader left, nothing to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug, or a failure no command foresaw: still one line
        _say(_describe(exc))
        return 1


def _say(line: str) -> None:
    from mailwarden import logsetup

    print(f"mailwarden: {line}", file=sys.stderr)
    if logsetup.to_syslog():  # serve started by something that keeps no stderr: say it there too
        LOG.critical("%s", line)


def _describe(exc: BaseException) -> str:
    """One line for an unforeseen exception: the OS's words for an OSError, else type and text."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
