"""The matcher's header-name prefilter (`^Subject:` rules tried only on Subject headers) never
changes which rule matches; checked against the same matcher with the prefilter off."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mailwarden.rules.loader import load_table
from mailwarden.rules.matcher import Hit, Matcher, header_names
from mailwarden.rules.table import Pattern


@pytest.mark.parametrize(("source", "flags", "negate", "names"), [
    (b"^Subject:", "", False, {b"subject"}),
    (b"^subject: .*\\bwin\\b", "i", False, {b"subject"}),
    (b"^(To|Cc):.*@x", "", False, {b"to", b"cc"}),
    (b"^(?:To|Cc|Bcc):", "", False, {b"to", b"cc", b"bcc"}),
    (b"^Subject:.*(win|lose)", "", False, {b"subject"}),
    (b"^Subject:\\|x", "", False, {b"subject"}),
    (b"^Subject:[|]x", "", False, {b"subject"}),
    (b"^X-Words: the|^Subject", "", False, None),  # the second branch has no name
    (b"^Subject:[|]x|y", "", False, None),
    (b"^Subject:[\\]|x]", "", False, None),  # POSIX reads [\] then |x]: left out
    (b"^Subject:\\Q|\\E", "", False, None),
    (b"^Subject:", "", True, None),  # !/^Subject:/ matches every other header
    (b"^Subject:", "m", False, None),  # ^ after any newline of a folded header
    (b"^Subject:", "x", False, None),
    (b"^Content-(Type|Disposition):", "", False, None),
    (b"Subject:", "", False, None),
])
def test_names_are_read_only_where_every_match_must_start_with_them(
        source: bytes, flags: str, negate: bool, names: set[bytes] | None) -> None:
    found = header_names(Pattern(source, flags, negate, 1))
    assert found == (None if names is None else frozenset(names))


RULES = [
    "/^Subject:.*\\b{w}\\b/ REJECT s", "/^subject: {w}/ INFO s2", "/^(To|Cc):.*{w}@/ WARN to",
    "/^(?:From|Sender):.*{w}/ HOLD from", "/{w}/ INFO anywhere", "!/^Subject:/ DUNNO not-subject",
    "/^X-Words: {w}|^Subject/ INFO branch", "/^Received:.*{w}/m INFO multiline",
    "/^Subject:[|]{w}|{w}x/ INFO class-then-branch", "/^Received: from {w}/ INFO received",
]
NAMES = ["Subject", "SUBJECT", "subject", "To", "Cc", "From", "Sender", "X-Words", "Received", "Date", "X"]
WORDS = ["win", "lose", "cash", "prize", "free"]


def test_the_prefilter_never_changes_the_first_match(tmp_path: Path) -> None:
    rng = random.Random(15)
    for round_ in range(40):
        lines = [rng.choice(RULES).format(w=rng.choice(WORDS)) for _ in range(rng.randint(1, 12))]
        table = tmp_path / f"t{round_}.pcre"
        table.write_text("\n".join(lines) + "\n")
        fast = Matcher([load_table(table)])
        plain = Matcher([load_table(table)])
        plain._names, plain._only_names, plain._by_name = {}, None, {}
        for _ in range(60):
            value = " ".join(rng.choice([*WORDS, "x", "a@b", "|", "win@x"]) for _ in range(rng.randint(0, 5)))
            fold = rng.choice(["", "", "", "\n\tReceived: from win", "\nReceived: from win"])
            text = f"{rng.choice(NAMES)}: {value}{fold}".encode()
            got, want = fast.lookup(text), plain.lookup(text)
            assert _seen(got) == _seen(want), (lines, text)


def _seen(hit: Hit | None) -> tuple[int, bytes] | None:
    return None if hit is None else (hit.rule.line, hit.result)


def test_headers_no_rule_names_skip_the_search(tmp_path: Path) -> None:
    table = tmp_path / "t.pcre"
    table.write_text("/^Subject:.*win/ REJECT\n/^(To|Cc):.*win/ REJECT\n")
    m = Matcher([load_table(table)])
    assert m.candidates(b"dkim-signature: v=1; a=rsa-sha256; win") == []
    assert m.candidates(b"subject: win") == [0]
    assert m.candidates(b"cc: win@x") == [1]


def test_a_header_no_rule_names_is_skipped_whole(tmp_path: Path) -> None:
    table = tmp_path / "t.pcre"
    table.write_text("/^Subject:.*win/ REJECT\n/^(To|Cc):.*win/ REJECT\n")
    m = Matcher([load_table(table)])
    assert m.skips(b"dkim-signature") and m.skips(b"x-subject")
    assert not m.skips(b"subject") and not m.skips(b"cc")
    table.write_text("/^Subject:.*win/ REJECT\n/win/ REJECT\n")  # a rule for any header
    assert not Matcher([load_table(table)]).skips(b"dkim-signature")
    table.write_text("")
    assert Matcher([load_table(table)]).skips(b"subject")
