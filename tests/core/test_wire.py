"""Parsing message bytes into what a milter sees from Postfix (P_HDR_LEADSPC values, CRLF body)."""

from __future__ import annotations

from mailwarden.core.wire import parse_message


def test_values_keep_leading_space_folds_and_bytes() -> None:
    data = b"Subject:no-space\nX-Two:  two\nX-Fold: first\n  second\n\tthird\nX-L: caf\xe9\n\nbody\nline\n"
    parsed = parse_message(data)
    values = {h.name: h.value for h in parsed.headers}
    assert values["Subject"] == "no-space"
    assert values["X-Two"] == "  two"
    assert values["X-Fold"] == " first\n  second\n\tthird"
    assert values["X-L"].encode("utf-8", "surrogateescape") == b" caf\xe9"
    assert parsed.body == b"body\r\nline\r\n"
    assert not parsed.crlf


def test_round_trip_of_crlf_message() -> None:
    data = b"A: 1\r\nB:\r\n  folded\r\n\r\nbody\r\n"
    parsed = parse_message(data)
    assert parsed.crlf
    assert b"".join(h.raw() + b"\r\n" for h in parsed.headers) + b"\r\n" + parsed.body == data


def test_non_header_line_starts_the_body() -> None:
    parsed = parse_message(b"A: 1\nthis is not a header\nB: 2\n")
    assert [h.name for h in parsed.headers] == ["A"]
    assert parsed.body == b"this is not a header\r\nB: 2\r\n"


def test_a_last_line_without_a_line_end_gets_one_as_postfix_delivers_it() -> None:
    assert parse_message(b"A: 1\n\nno newline at the end").body == b"no newline at the end\r\n"
    assert parse_message(b"A: 1\r\n\r\nline\r\nlast").body == b"line\r\nlast\r\n"
    assert parse_message(b"A: 1\n\nline\n").body == b"line\r\n"
    assert parse_message(b"A: 1\n\n").body == b""
    assert parse_message(b"A: 1\n").body == b""
