"""Header parsing and writing give back the input byte for byte when nothing was edited.

A message read from an archive (dry-run), split into the headers a milter sees, the MTA's own
Received and the delivery headers, then written out (`--write`), must be the bytes Postfix would
deliver: the input itself, except that Postfix's smtp_get() drops bare CRs before a line end.

Not generated: whitespace between a header name and its colon (`Subject : x`). Postfix hands a
milter the name without it, core.wire does the same, so `--write` drops it; a milter-side model
has no way to keep it.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mailwarden.adapters.envelope import derive
from mailwarden.core.model import Body, Message
from mailwarden.core.wire import parse_message, to_lf

# RFC 5322 ftext, as core.wire accepts it, weighted towards names the code treats specially.
NAMES = st.one_of(
    st.sampled_from(["Received", "Return-Path", "Delivered-To", "X-Original-To", "From", "Subject",
                     "DKIM-Signature", "Authentication-Results", "received", "FROM"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
            min_size=1, max_size=12),
)
RECEIVED = st.sampled_from([
    b" from mail.sender.test (mail.sender.test [192.0.2.1])\n\tby mx.rcpt.test (Postfix) with ESMTP id 4A"
    b"\n\tfor <bob@rcpt.test>; Sun, 22 Nov 2026 02:43:31 +0000 (UTC)",
    b" from h ([IPv6:2001:db8::1]) by mx",
])
# Line content: any byte but CR and LF; WITH_CR adds a bare CR anywhere, at the end too.
LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
WITH_CR = st.tuples(LINE, st.sampled_from([b"\r", b""]), LINE).map(b"".join)


@st.composite
def header_lines(draw: st.DrawFn) -> bytes:
    """One header as it sits in the file, without the final line end; folds joined by LF."""
    name = draw(NAMES).encode()
    if name.lower() == b"received" and draw(st.booleans()):
        return name + b":" + draw(RECEIVED)
    first = draw(st.one_of(LINE, WITH_CR))
    folds = draw(st.lists(st.tuples(st.sampled_from([b" ", b"\t", b"  "]), LINE), max_size=3))
    return b"\n".join([name + b":" + first, *(ws + rest for ws, rest in folds)])


@st.composite
def messages(draw: st.DrawFn, eol: bytes) -> bytes:
    headers = draw(st.lists(header_lines(), min_size=1, max_size=8))
    body_lines = draw(st.lists(st.one_of(LINE, WITH_CR), max_size=6))
    if eol == b"\n":
        headers = [h.replace(b"\r", b"") for h in headers]
        body_lines = [line.replace(b"\r", b"") for line in body_lines]
    head = b"".join(h.replace(b"\n", eol) + eol for h in headers)
    return head + eol + b"".join(line + eol for line in body_lines)


def as_postfix_delivers(data: bytes) -> bytes:
    """smtp_get(): "We remove bare CR if received before CRLF, and leave it alone otherwise"."""
    return re.sub(rb"\r*\n", b"\r\n", data)


def rebuilt(data: bytes) -> bytes:
    parsed = parse_message(data)
    derived = derive(parsed.headers)
    message = Message(list(derived.visible), Body.from_bytes(parsed.body), derived.mta_header,
                      delivery=list(derived.delivery_headers))
    return message.to_bytes()


@given(messages(b"\r\n"))
def test_crlf_message_round_trips(data: bytes) -> None:
    assert rebuilt(data) == as_postfix_delivers(data)


@given(messages(b"\n"))
def test_lf_message_round_trips(data: bytes) -> None:
    parsed = parse_message(data)
    assert not parsed.crlf
    assert to_lf(rebuilt(data)) == data


@given(header_lines())
def test_each_header_writes_back_as_read(line: bytes) -> None:
    raw = as_postfix_delivers(line.replace(b"\n", b"\r\n") + b"\r\n")
    (header,) = parse_message(raw + b"\r\n").headers
    assert header.raw() + b"\r\n" == raw
