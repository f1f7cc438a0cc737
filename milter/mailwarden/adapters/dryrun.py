"""The dry-run adapter: the same pipeline over .eml files, mbox and Maildir, offline.

What it reports for a message is what the milter would do with the same envelope: it builds
the same Transaction (headers as Postfix shows them to a milter, CRLF body) and runs the same
phases in the same order.

Envelope precedence, field by field: a command-line flag, else the value derived from the
message (topmost Received, Return-Path, Delivered-To/X-Original-To), else a default (an unknown
client with no address, null sender, no recipients). The default client is not 127.0.0.1: loopback
is a trusted network by default, and archived mail of unknown origin is read as inbound.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mailwarden.adapters.dryrun_jobs import ordered_map
from mailwarden.adapters.envelope import derive
from mailwarden.adapters.sources import Item, iter_items
from mailwarden.bootstrap import Runtime
from mailwarden.core.decisions import Outcome
from mailwarden.core.model import Body, Connection, Envelope, Message, Transaction, bracket, strip_brackets
from mailwarden.core.wire import ParsedMessage, parse_message, to_crlf, to_lf
from mailwarden.reports.row import received_time

if TYPE_CHECKING:
    from mailwarden.reports.recorder import Recorder

HEAD_LIMIT = 1 << 20
"""Header bytes read before the body is streamed regardless (a 'header' block this long is a
body without a blank line; parse_message still finds where its headers end)."""
CHUNK = 1 << 16


@dataclass
class Streamed:
    """A message read from a stream: its headers parsed, its body not yet read."""

    parsed: ParsedMessage
    rest: IO[bytes]
    head_size: int


def read_message(stream: IO[bytes]) -> Streamed:
    """The header block, read line by line up to the blank line; the body stays in `stream`.

    parse_message decides where the headers end, over the header block alone (a line that is
    neither a header nor a continuation starts the body, as in Postfix's cleanup).
    """
    lines: list[bytes] = []
    size = 0
    while size < HEAD_LIMIT:
        line = stream.readline()
        lines.append(line)
        size += len(line)
        if not line or not line.rstrip(b"\r\n"):
            break
    return Streamed(parse_message(b"".join(lines)), stream, size)


def body_into(streamed: Streamed, body: Body) -> bool:
    """Stream the rest of the body into `body` in CRLF, as Postfix hands it to a milter, ending
    in a line end as parse_message ends it; returns whether the input used CRLF (judged on its
    first 4096 bytes, as parse_message judges)."""
    crlf = streamed.parsed.crlf
    body.write(streamed.parsed.body)
    seen = streamed.head_size
    pending = b""  # the CRs at the end of a chunk
    tail = b""
    while chunk := streamed.rest.read(CHUNK):
        data = pending + chunk
        if seen < 4096 and not crlf:
            crlf = b"\r\n" in data[: 4096 - seen + len(pending)]
        seen += len(chunk)
        kept = data.rstrip(b"\r")  # CRs whose LF may start the next chunk (to_crlf drops them then)
        data, pending = kept, data[len(kept):]
        if data:
            body.write(to_crlf(data))
            tail = data[-1:]
    if pending or (tail and tail != b"\n"):
        body.write(b"\r\n")
    return crlf


@dataclass(frozen=True)
class EnvelopeFlags:
    client_ip: str | None = None
    client_name: str | None = None
    helo: str | None = None
    mail_from: str | None = None
    rcpts: tuple[str, ...] = ()
    auth_user: str | None = None
    daemon_name: str | None = None
    queue_id: str | None = None


@dataclass
class Report:
    counts: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    processed: int = 0


def build_transaction(
    runtime: Runtime, data: bytes | IO[bytes], flags: EnvelopeFlags
) -> tuple[Transaction, bool]:
    """The transaction the milter would have built for these bytes (or this stream, read in
    chunks: the body goes to a spool file past `[milter] spool_threshold`, as in `serve`); also
    whether the input was CRLF."""
    if isinstance(data, bytes):
        parsed = parse_message(data)
        body = Body.from_bytes(parsed.body, runtime.config.milter.spool_threshold)
        crlf = parsed.crlf
    else:
        streamed = read_message(data)
        parsed = streamed.parsed
        body = Body(runtime.config.milter.spool_threshold)
        crlf = body_into(streamed, body)
    derived = derive(parsed.headers)
    macros: dict[str, str] = {}
    if flags.daemon_name:
        macros["{daemon_name}"] = flags.daemon_name
    if flags.auth_user:
        macros["{auth_authen}"] = flags.auth_user
    conn = Connection(
        client_ip=flags.client_ip or derived.client_ip or "",
        client_name=flags.client_name or derived.client_name or "unknown",
        helo=flags.helo or derived.helo,
        macros=macros,
    )
    mail_from = flags.mail_from if flags.mail_from is not None else (derived.mail_from or "")
    rcpts = flags.rcpts or tuple(derived.rcpts)
    env = Envelope(
        mail_from=bracket(mail_from),
        rcpts=tuple(bracket(r) for r in rcpts),
        queue_id=flags.queue_id or "",
    )
    message = Message(
        list(derived.visible), body, derived.mta_header, delivery=list(derived.delivery_headers)
    )
    tx = Transaction(conn, env, message, runtime.direction.direction(conn))
    return tx, crlf


def run_one(
    runtime: Runtime, data: bytes | IO[bytes], flags: EnvelopeFlags
) -> tuple[Transaction, Outcome, bool]:
    tx, crlf = build_transaction(runtime, data, flags)
    outcome = runtime.pipeline.run(tx)
    return tx, outcome, crlf


def report_json(item: Item, tx: Transaction, outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"source": str(item.path)}
    if item.index is not None:
        out["index"] = item.index
    out["direction"] = tx.direction.value
    out["envelope"] = {
        "client_ip": tx.connection.client_ip,
        "helo": tx.connection.helo,
        "mail_from": tx.envelope.sender,
        "rcpts": [strip_brackets(r) for r in tx.envelope.rcpts],
    }
    out.update(outcome.to_json())
    return out


def _readable(item: Item, tx: Transaction, outcome: Outcome) -> str:
    verdict = outcome.verdict
    line = f"{item.source}: {tx.direction.value} {verdict.action.value}"
    if verdict.reply:
        line += f" ({verdict.reply})"
    if verdict.reason:
        line += f" ({verdict.reason})"
    lines = [line]
    for edit in outcome.edits:
        fields = edit.to_json()
        detail = ", ".join(f"{k}={v!r}" for k, v in fields.items() if k != "op" and v not in (None, ""))
        lines.append(f"    {fields['op']}: {detail}")
    for key, value in outcome.auth.items():
        lines.append(f"    {key}: {json.dumps(value, ensure_ascii=False)}")
    for rule in outcome.rules:
        lines.append(f"    rule {rule.get('file')}:{rule.get('line')}: {rule.get('action')}")
    for line in outcome.log:
        lines.append("    log: " + line)
    for error in outcome.errors:
        lines.append("    error: " + error.splitlines()[0])
    for note in outcome.notes:
        lines.append("    note: " + note.splitlines()[0])
    return "\n".join(lines)


def _write(out_dir: Path, item: Item, seq: int, tx: Transaction, crlf: bool) -> Path:
    stem = item.path.name if item.index is None else f"{item.path.name}-{item.index}"
    stem = stem.removesuffix(".eml").replace(":", "_").replace(",", "_")
    target = out_dir / f"{seq:06d}-{stem}.eml"
    data = tx.message.to_bytes()
    target.write_bytes(data if crlf else to_lf(data))
    return target


@dataclass(frozen=True)
class Processed:
    """One message's report: its lines for stdout and its verdict, or its line for stderr."""

    text: str = ""
    action: str = ""
    error: str = ""


def process(runtime: Runtime, flags: EnvelopeFlags, as_json: bool, write_dir: Path | None,
            recorder: Recorder | None, numbered: tuple[int, Item]) -> Processed:
    seq, item = numbered
    try:
        if item.opener is None:
            raise OSError(item.error)
        with item.opener() as stream:  # read in chunks, as serve receives it
            tx, outcome, crlf = run_one(runtime, stream, flags)
    except OSError as exc:
        return Processed(error=f"mailwarden: {item.source}: cannot read: {exc.strerror or exc}")
    except Exception as exc:  # one bad message must not stop the run
        return Processed(error=f"mailwarden: {item.source}: cannot process: {exc}")
    if as_json:
        text = json.dumps(report_json(item, tx, outcome), ensure_ascii=False)
    else:
        text = _readable(item, tx, outcome)
    if write_dir is not None:
        _write(write_dir, item, seq, tx, crlf)
    if recorder is not None:
        recorder.record_outcome(tx, outcome, received_time(tx.message))
    tx.message.body.close()
    return Processed(text, outcome.verdict.action.value)


def run(
    runtime: Runtime,
    paths: list[str],
    flags: EnvelopeFlags,
    as_json: bool = False,
    write_dir: Path | None = None,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
    jobs: int = 1,
    recorder: Recorder | None = None,
) -> int:
    """Process every message, in `jobs` processes; 0 when all were read, 1 when some could not be.

    `recorder`: record each DMARC evaluation for reports, at the time the message was received;
    with one, the messages run in this process (its queue and writer are this process's)."""
    report = Report()
    started = time.perf_counter()
    progress = err.isatty()
    if write_dir is not None:
        write_dir.mkdir(parents=True, exist_ok=True)
    work = functools.partial(process, runtime, flags, as_json, write_dir, recorder)
    for done in ordered_map(work, enumerate(iter_items(paths)), 1 if recorder is not None else jobs):
        if done.error:
            report.unreadable += 1
            print(done.error, file=err)
            continue
        report.processed += 1
        report.counts[done.action] += 1
        print(done.text, file=out)
        if progress:
            print(f"\r{report.processed} messages", end="", file=err, flush=True)
    elapsed = max(time.perf_counter() - started, 1e-9)
    if progress:
        print(file=err)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items())) or "none"
    print(
        f"mailwarden dry-run: {report.processed} messages ({counts}), {report.unreadable} unreadable, "
        f"{report.processed / elapsed:.1f} msg/s",
        file=err,
    )
    return 1 if report.unreadable else 0
