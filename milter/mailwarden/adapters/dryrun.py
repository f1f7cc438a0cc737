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
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from mailwarden.adapters.dryrun_jobs import ordered_batches
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
    out: dict[str, Any] = {"source": item.path}
    if item.number is not None:
        out["index"] = item.number
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
    name = os.path.basename(item.path)
    stem = name if item.number is None else f"{name}-{item.number}"
    stem = stem.removesuffix(".eml").replace(":", "_").replace(",", "_")
    target = out_dir / f"{seq:06d}-{stem}.eml"
    data = tx.message.to_bytes()
    target.write_bytes(data if crlf else to_lf(data))
    return target


class Rendered(NamedTuple):
    """Some messages' reports, as the bytes to write: runs of (to stderr, bytes) in their order,
    and the counters for the summary line (a tuple of plain values: it comes back from a job)."""

    runs: list[tuple[bool, bytes]]
    counts: dict[str, int]
    unreadable: int


@dataclass(frozen=True)
class Renderer:
    """Runs messages through the pipeline and renders their reports, in whichever process."""

    runtime: Runtime
    flags: EnvelopeFlags
    as_json: bool
    write_dir: Path | None
    recorder: Recorder | None
    out_codec: tuple[str, str]
    err_codec: tuple[str, str]

    def report(self, seq: int, item: Item) -> tuple[str, str]:
        """One message's report: its text and its verdict, or its error line and ''."""
        try:
            with item.open() as stream:  # read in chunks, as serve receives it
                tx, outcome, crlf = run_one(self.runtime, stream, self.flags)
        except OSError as exc:
            return f"mailwarden: {item.source}: cannot read: {exc.strerror or exc}", ""
        except Exception as exc:  # one bad message must not stop the run
            return f"mailwarden: {item.source}: cannot process: {exc}", ""
        try:
            if self.as_json:
                text = json.dumps(report_json(item, tx, outcome), ensure_ascii=False)
            else:
                text = _readable(item, tx, outcome)
            if self.write_dir is not None:
                _write(self.write_dir, item, seq, tx, crlf)
            if self.recorder is not None:
                self.recorder.record_outcome(tx, outcome, received_time(tx.message))
        finally:
            tx.message.body.close()
        return text, outcome.verdict.action.value

    def __call__(self, batch: list[tuple[int, Item]]) -> Rendered:
        runs: list[tuple[bool, bytes]] = []
        counts: dict[str, int] = {}
        unreadable = 0
        pending: list[str] = []
        to_err = False
        for seq, item in batch:
            text, action = self.report(seq, item)
            if action:
                counts[action] = counts.get(action, 0) + 1
            else:
                unreadable += 1
            if pending and to_err != (not action):
                runs.append((to_err, _encode(pending, self.err_codec if to_err else self.out_codec)))
                pending = []
            to_err = not action
            pending.append(text)
        if pending:
            runs.append((to_err, _encode(pending, self.err_codec if to_err else self.out_codec)))
        return Rendered(runs, counts, unreadable)


def _encode(lines: list[str], codec: tuple[str, str]) -> bytes:
    text = "\n".join(lines) + "\n"
    try:
        return text.encode(*codec)
    except UnicodeEncodeError:  # what print() would have failed on: say it, do not stop
        return text.encode(codec[0], "backslashreplace")


class _Sink:
    """Where rendered bytes go: the binary buffer under a text stream (whose text layer is
    flushed first), or the text stream itself, decoded, when it has no buffer (a StringIO)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.buffer: IO[bytes] | None = getattr(stream, "buffer", None)
        if self.buffer is not None:
            stream.flush()
            encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
            self.codec = (encoding or "utf-8", errors or "strict")
        else:
            self.codec = ("utf-8", "surrogatepass")
        # A terminal sees each message as it is done, as print() shows it.
        self.flush = bool(getattr(stream, "line_buffering", False))

    def write(self, data: bytes) -> None:
        if self.buffer is None:
            self.stream.write(data.decode(*self.codec))
            return
        self.buffer.write(data)
        if self.flush:
            self.buffer.flush()


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

    The reports are rendered to bytes where the messages run, and this process only writes them,
    in input order: with N jobs on N CPUs, whatever this process does is taken from the jobs.
    `recorder`: record each DMARC evaluation for reports, at the time the message was received;
    with one, the messages run in this process (its queue and writer are this process's)."""
    report = Report()
    started = time.perf_counter()
    progress = err.isatty()
    if write_dir is not None:
        write_dir.mkdir(parents=True, exist_ok=True)
    sinks = {False: _Sink(out), True: _Sink(err)}
    render = Renderer(runtime, flags, as_json, write_dir, recorder, sinks[False].codec, sinks[True].codec)
    jobs = 1 if recorder is not None else jobs
    for done in ordered_batches(render, enumerate(iter_items(paths)), jobs, functools.partial(_lost, render)):
        for to_err, data in done.runs:
            sinks[to_err].write(data)
        report.counts.update(done.counts)
        report.unreadable += done.unreadable
        report.processed += sum(done.counts.values())
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


def _lost(render: Renderer, batch: list[tuple[int, Item]], why: str) -> Rendered:
    """The reports of messages whose job ended before it reported them."""
    lines = [f"mailwarden: {item.source}: cannot process: {why}" for _, item in batch]
    return Rendered([(True, _encode(lines, render.err_codec))], {}, len(batch))
