"""DKIM canonicalization (RFC 6376 3.4) on whole buffers, streaming over the body.

The body is never held whole: each chunk is canonicalized with bytes/regex operations (C speed)
and fed to the hashes at once. Only what cannot be decided yet is carried to the next chunk: a
partial last line (relaxed), a trailing CR (line ends), and the trailing run of empty lines,
which both algorithms drop at the very end.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

_LONE_LF = re.compile(rb"(?<!\r)\n")
_WSP = re.compile(rb"[ \t]+")
_TAB_TO_SP = bytes.maketrans(b"\t", b" ")
_FOLD = re.compile(rb"\r?\n")
# A partial line longer than this is canonicalized up to its last non-blank byte, so a body
# without line ends does not pile up in memory.
_MAX_CARRY = 1 << 16


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """`name:value` (value as after the colon, folds included) in relaxed form, with CRLF."""
    if b"\x0b" in value or b"\x0c" in value or b"\r" in value:
        # bytes.split() would treat VT/FF and a bare CR as whitespace; RFC 6376 WSP is only SP
        # and HTAB (folds reach us as LF: a CR is a bare one, kept as dkimpy keeps it).
        value = _WSP.sub(b" ", _FOLD.sub(b"", value)).strip(b" ")
    else:
        # One C call unfolds (a fold is CRLF + WSP), collapses WSP runs and trims both ends.
        value = b" ".join(value.split())
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def simple_header(name: bytes, value: bytes) -> bytes:
    return name + b":" + _LONE_LF.sub(b"\r\n", value) + b"\r\n"


def canon_header(canon: str, name: bytes, value: bytes) -> bytes:
    return relaxed_header(name, value) if canon == "relaxed" else simple_header(name, value)


def _relax_lines(data: bytes) -> bytes:
    """Relaxed body rules on complete lines: WSP runs become one SP, none before CRLF.

    Plain bytes methods rather than re.sub, which is several times slower on text with many
    short runs. split+join beats replace here (replace scans twice: count, then copy). Each pass
    halves the runs.
    """
    if b"\t" in data:
        data = data.translate(_TAB_TO_SP)
    while b"  " in data:
        pieces = data.split(b"  ")
        data = b" ".join(pieces)
        # split() takes runs two spaces at a time from the left, so a double space survives
        # only where a run was 3+ long: a later piece starts with a space or is empty. Checking
        # the pieces beats scanning the whole buffer again, unless they are very many.
        if len(pieces) < len(data) >> 6 and not any(not p or p[0] == 32 for p in pieces[1:]):
            break
    if b" \r\n" in data:
        data = b"\r\n".join(data.split(b" \r\n"))
    return data


def _trailing_crlf_run(data: bytes) -> int:
    """Length of the run of CRLFs (plus a lone final CR) at the end of `data`."""
    end = len(data)
    if data.endswith(b"\r"):
        end -= 1
    # Walk back pair by pair: usually one or two steps, and no copy of the chunk.
    start = end
    while start >= 2 and data[start - 2:start] == b"\r\n":
        start -= 2
    return len(data) - start


class BodyCanonicalizer:
    """Feeds the canonical form of a body, chunk by chunk, to `sinks` (objects with update())."""

    def __init__(self, relaxed: bool, sinks: list[Any], fix_lf: bool = True) -> None:
        self.relaxed = relaxed
        self.sinks = sinks
        # Postfix hands milters CRLF bodies (and core.wire converts files to CRLF), so the stages
        # skip the bare-LF check: it costs more than the rest of simple canonicalization.
        self.fix_lf = fix_lf
        self._cr = b""  # a CR that ended the previous chunk (its LF may come next)
        self._line = b""  # relaxed: the partial last line
        self._empty = b""  # the trailing run of CRLFs, emitted only if content follows
        self._content = False

    def update(self, chunk: bytes) -> None:
        data = self._cr + chunk
        if data.endswith(b"\r"):
            self._cr, data = b"\r", data[:-1]
        else:
            self._cr = b""
        if self.fix_lf and data.count(b"\n") != data.count(b"\r\n"):
            data = _LONE_LF.sub(b"\r\n", data)
        if self.relaxed:
            data = self._relax(data)
        self._emit(data)

    def _relax(self, data: bytes) -> bytes:
        data = self._line + data
        cut = data.rfind(b"\n") + 1
        head, tail = data[:cut], data[cut:]
        if len(tail) > _MAX_CARRY:
            keep = len(tail.rstrip(b" \t\r"))
            head, tail = head + tail[:keep], tail[keep:]
        self._line = tail
        return _relax_lines(head)

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        run = _trailing_crlf_run(data)
        if run == len(data):
            self._empty += data
            return
        out = self._empty + data[: len(data) - run] if self._empty else data[: len(data) - run]
        self._emit_content(out)
        self._empty = data[len(data) - run:]

    def finish(self) -> None:
        """Flush the end of the body: drop trailing empty lines, end with one CRLF."""
        rest, cr = self._line, self._cr
        self._line = self._cr = b""
        if rest:
            # An unterminated last line is content even when blank (as dkimpy does); SMTP
            # bodies always end with CRLF, so this only matters for files.
            self._emit_content(self._empty + _WSP.sub(b" ", rest))
        if cr:  # a CR that ends the body without its LF is content
            self._emit_content(self._empty + cr)
        # relaxed: an empty body stays empty; simple: it becomes one CRLF.
        if self._content or not self.relaxed:
            for sink in self.sinks:
                sink.update(b"\r\n")

    def _emit_content(self, out: bytes) -> None:
        self._empty = b""
        self._content = True
        for sink in self.sinks:
            sink.update(out)


# The constructors themselves: hashlib.new() goes through a Python-level lookup on every call.
_HASHES = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}


class BodyHash:
    """A body hash with an optional l= limit; counts the whole canonical length too."""

    def __init__(self, algorithm: str, limit: int | None = None) -> None:
        new = _HASHES.get(algorithm)
        self._hash = new() if new is not None else hashlib.new(algorithm)
        self.limit = limit
        self.total = 0  # canonical bytes seen, beyond the limit too

    def update(self, data: bytes) -> None:
        if self.limit is None:
            self._hash.update(data)
        elif self.total < self.limit:
            self._hash.update(data[: self.limit - self.total])
        self.total += len(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def body_hashes(
    chunks: Iterable[bytes], wanted: Iterable[tuple[str, str, int | None]], fix_lf: bool = True
) -> dict[tuple[str, str, int | None], BodyHash]:
    """One pass over the body for every (canonicalization, hash, l=) that signatures need.

    `fix_lf=False` trusts the body to have CRLF line ends (true of milter bodies)."""
    hashes: dict[tuple[str, str, int | None], BodyHash] = {}
    for key in wanted:
        if key not in hashes:
            hashes[key] = BodyHash(key[1], key[2])
    canons = []
    for mode in ("simple", "relaxed"):
        sinks = [h for k, h in hashes.items() if k[0] == mode]
        if sinks:
            canons.append(BodyCanonicalizer(mode == "relaxed", sinks, fix_lf))
    for chunk in chunks:
        for c in canons:
            c.update(chunk)
    for c in canons:
        c.finish()
    return hashes


def canon_body(data: bytes, relaxed: bool) -> bytes:
    """The whole canonical body (tests and small bodies)."""
    out: list[bytes] = []

    class _Sink:
        total = 0

        def update(self, b: bytes) -> None:
            out.append(b)
            self.total += len(b)

    sink = _Sink()
    c = BodyCanonicalizer(relaxed, [sink])
    c.update(data)
    c.finish()
    return b"".join(out)
