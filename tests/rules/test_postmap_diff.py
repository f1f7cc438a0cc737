"""Differential suite: `mailwarden rules test` against the real `postmap -hq` / `-bq`, byte for byte.

Each generated table is looked up by both on the same message; stdout and exit status must be
equal. Tables are small (one rule, or one feature) so a difference points at one syntax point.
Constructs mailwarden refuses on purpose are in test_refusals below, not here (see rules/README.md).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mailwarden.rules.cli import query
from mailwarden.rules.loader import load_table

POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"
# Its own main.cf (see there): a postfix installed without configuration has none in /etc/postfix.
POSTMAP_CMD = [POSTMAP, "-c", str(Path(__file__).resolve().parents[1] / "data" / "postmap")]
pytestmark = pytest.mark.skipif(not Path(POSTMAP).exists(), reason="postmap (postfix) not installed")

MESSAGE = (
    b"Received: from mx.example (mx.example [192.0.2.1])\n"
    b"\tby mail.example (Postfix) with ESMTP id ABC123\n"
    b"Subject: foo\n\tbar baz\n"
    b"SUBJECT: Upper Case 42\n"
    b'From: "Alice" <alice@example.com>\n'
    b"To: bob@example.net, carol@example.org\n"
    b"X-Multi: a\n b\n  c\n"
    b"X-Empty:\n"
    b"X-Spaces :  padded  \n"
    b"X-Path: /usr/local/bin ~tilde~ |pipe| 100% #hash\n"
    b"X-Dollar: cost $5 and $$\n"
    b"X-8bit: caf\xc3\xa9 \xe9t\xe9 \xc9T\xc9\n"
    b"X-Digits: 2024-11-22 12:34:56\n"
    b"X-Words: the quick brown fox jumps over the lazy dog\n"
    b"X-CR: carriage\r\n"
    b"X-Brackets: [a] {b} (c) ]d[\n"
    b'Content-Type: multipart/mixed; boundary="XX"\n'
    b"\n"
    b"--XX\n"
    b'Content-Type: application/octet-stream; name="evil.exe"\n'
    b"\n"
    b"body line one\n"
    b"\tindented body line\n"
    b"\n"
    b"Subject: not a header here\n"
    b"--XX--\n"
    b"last line without newline"
)

# One rule per table, pcre. Every syntax point of pcre_table(5) as Postfix 3.7 reads it.
PCRE_RULES = [
    b"/^Subject: foo/ INFO plain",
    b"/^subject: FOO/ INFO case-insensitive by default",
    b"/^Subject: foo/i INFO i toggled off: case-sensitive",
    b"/^SUBJECT:/i INFO exact case",
    b"/^Subject:.*bar/ INFO s default: dot matches newline",
    b"/^Subject:.*bar/s INFO s toggled off",
    b"/^X-Multi: a$/ INFO no m",
    b"/^X-Multi: a$/m INFO m flag",
    b"/^ b$/m INFO m anchors inside",
    b"/a\\n b/ INFO escaped newline in pattern",
    b"/^X-Multi: a\\s+b/ INFO whitespace class across fold",
    b"~^X-Path: /usr~ INFO tilde delimiter",
    b"|^X-Path: /usr/local| INFO pipe delimiter",
    b"/^X-Path: \\/usr\\/local/ INFO escaped delimiter",
    b"%100\\%% INFO escaped percent delimiter",
    b",^X-Words: the, INFO comma delimiter",
    b"/^X-Words: the quick/ INFO result with  two spaces",
    b"!/^X-Words:/ INFO negated",
    b"! /^X-Words:/ INFO negated with space",
    b"!!/^X-Words:/ INFO double negation",
    b"!/^X-Words:/ INFO negated with $1",
    b"/^Subject: (foo)/ INFO $1 ${1} $(1) $$ $$1",
    b"/^Subject: (f)(o)(o)/ INFO $3$2$1",
    b"/^X-Words: (the) (quick) (brown) (fox) (jumps) (over) (the) (lazy) (dog)(x)?/ INFO [$9][$10][${10}]",
    b"/^X-Words: (nope)?(the)/ INFO [$1][$2]",
    b"/^X-Words: (the)/ INFO $2",
    b"/^X-Words: (the)/ INFO $0",
    b"/^X-Words: (the)/ INFO $1a",
    b"/^X-Words: (the)/ INFO ${1}a",
    b"/^X-Words: (the)/ INFO $",
    b"/^X-Words: (the)/ INFO ${1",
    b"/^X-Words: (the)/ INFO $(1",
    b"/^X-Words: (t)(h)e/ INFO ${1}}$(2))",
    b"/^X-Words: (the)/ INFO $_",
    b"/^X-Words: (the)/ INFO $01",
    b"/^X-Words:/",
    b"/^X-Words:/ ",
    b"/^X-Words: (.)/ INFO [$1]",
    b"/^X-Words/Q INFO unknown flag",
    b"/^X-Words/X INFO obsolete flag",
    b"/^X-Words/ix INFO two flags",
    b"/^X-Words INFO no closing delimiter",
    b"/^X-Words(/ INFO bad regex",
    b"/^X-Words:\\s+the(?= quick)/ INFO lookahead",
    b"/^X-Words:.*?o/ INFO lazy",
    b"/^X-Words: (.*?)o/ INFO lazy capture $1",
    b"/^X-Words: (.*)o/U INFO ungreedy $1",
    b"/^X-Words: (.*?)o/U INFO U makes lazy greedy $1",
    b"/X-Words/A INFO anchored",
    b"/the/A INFO anchored not at start",
    b"/dog$/ INFO dollar",
    b"/dog$/E INFO dollar endonly",
    b"/^X-CR: carriage$/ INFO cr stays in key",
    b"/^X-CR: carriage\\r$/ INFO cr matched",
    b"/^X-Words: t h e/x INFO extended",
    b"/^X-Words: the # comment\n quick/x INFO extended with comment",
    b"/^X-Digits: \\d{4}-\\d{2}/ INFO digits",
    b"/^X-Digits: \\d{,4}/ INFO brace literal",
    b"/^X-Brackets: \\[a\\] {b}/ INFO literal brace",
    b"/^X-Brackets: [[:punct:]]a/ INFO posix class",
    b"/^X-Brackets: []a[]+/ INFO bracket first",
    b"/^X-Brackets: [^]]+/ INFO negated bracket first",
    b"/^X-Digits: \\x32\\x30/ INFO hex escape",
    b"/^X-Digits: \\Q2024-\\E11/ INFO quoted",
    b"/^X-8bit: caf\xc3\xa9/ INFO utf-8 literal",
    b"/^X-8bit: .*\xc9t\xc9/ INFO latin-1 no case folding of 8-bit",
    b"/^X-8bit: caf(.+?) / INFO 8-bit capture $1",
    b"/^X-Dollar: cost \\$5 and \\$\\$/ INFO $$ in header",
    b"/^X-Empty:$/ INFO empty header",
    b"/^X-Spaces :/ INFO space before colon",
    b"/^X-Path: .* #hash$/ INFO hash in pattern",
    b"/\\bfox\\b/ INFO word boundary",
    b"/(?i)QUICK/i INFO inline flag",
    b"/(?-i)QUICK/ INFO inline flag off",
    b"/^(?:X-Words|Subject):/ INFO alternation",
    b"/^X-Words: (?<w>the)/ INFO named $1",
    b"/(\\w+) \\1/ INFO backreference $1",
    b"/^Received:.*\\n\\tby (\\S+)/ INFO received by $1",
    b'/^Content-Type:.*name="([^"]+)"/ REJECT attachment $1',
    b"/^X-Words: (?:the|a) (\\w+)/ INFO alt capture $1",
    b"/^X-Words: the\\s++quick/ INFO possessive",
    b"/^X-Words: (?>the) quick/ INFO atomic",
    b"/^X-Words: \\w+ \\w+ (?#comment)brown/ INFO comment group",
    b"/^X-Words: [a-z ]{10,}/ INFO interval",
    b"/^X-Words: [[:alpha:][:space:]]+$/ INFO classes to end",
    b"/^X-Digits: [[:digit:]]+-/ INFO digit class",
    b"/^x-words: THE/ INFO ascii case folding",
    b"/^X-Words: [[:upper:]]+/ INFO upper class is alpha under i",
    b"/^X-Words: [[:upper:]]+/i INFO upper class without i",
    b"/^X-Words: [^[:lower:]]/ INFO negated lower under i",
    b"/^X-Digits: \\d+\\h\\d/ INFO horizontal space",
    b"/^X-8bit: \\w+ \\p{L}+/ INFO latin-1 letters",
    b"/^X-8bit: .*\\p{Lu}/ INFO upper case property is not folded",
    b"/^X-8bit: .*[\\p{Lu}x]/ INFO property in a class",
    b"/^X-Words: (?:the (?i)QUICK|BROWN)/i INFO inline option lasts to the end of the group",
    b"/^X-Words: (t)(h)(e)(.)(q)(u)(i)(c)(k)(.)\\10/ INFO two-digit back reference $10",
    b"/^Subject: \\N+/ INFO N",
    b"/^X-Multi: a\\R/ INFO R",
    b"/(?<=X-W)ords/ INFO fixed lookbehind",
    b"/(?<=X-W+)ords/ INFO variable lookbehind is an error",
    b"/^X-Words: t{1,70000}/ INFO bound too big",
    b"/^X-Words: (?<w>t)\\k<w>/ INFO named reference",
    b"/^X-Words: \\p{Cyrillic}/ INFO script without bytes",
]

# regexp (POSIX, glibc regcomp) tables.
REGEXP_RULES = [
    b"/^Subject: foo/ INFO plain",
    b"/^subject: FOO/ INFO case-insensitive",
    b"/^Subject: foo/i INFO case-sensitive",
    b"/^Subject:.*bar/ INFO dot matches newline",
    b"/^X-Multi: a$/ INFO no m",
    b"/^X-Multi: a$/m INFO m flag",
    b"/^ b$/m INFO m anchors",
    b"/^Subject:.*bar/m INFO m dot stops at newline",
    b"/^X-Multi: a[^x]b/ INFO negated bracket crosses newline",
    b"/^X-Multi: a[^x]b/m INFO m negated bracket stops",
    b"/^X-Words: (the) (quick)/ INFO $2 $1",
    b"/^X-Words: (the)/ INFO $2",
    b"/^X-Words: (the)/ INFO $0",
    b"/^X-Words: (nope)?(the)/ INFO [$1][$2]",
    b"/^X-Words: the{1,2}/ INFO interval",
    b"/^X-Words: t+he?/ INFO ere quantifiers",
    b"/^X-Words: \\(the\\)/x INFO basic group $1",
    b"/^X-Words: \\(the\\) \\(q\\)/x INFO basic $2",
    b"/^X-Words: the+/x INFO basic plus is literal",
    b"/^X-Words: t\\{1\\}he/x INFO basic interval",
    b"/^X-Words: (the)/x INFO basic paren literal",
    b"/*X-Words/x INFO basic leading star",
    b"/^X-Brackets: [[]a[]]/ INFO brackets",
    b"/^X-Brackets: []a[]+/ INFO bracket first",
    b"/^X-Path: [\\]usr/ INFO backslash literal in bracket",
    b"/^X-Path: [/]usr/ INFO slash bracket",
    b"/^X-Digits: [[:digit:]]{4}/ INFO posix class",
    b"/^X-Words: [[:alpha:][:space:]]+$/ INFO classes",
    b"/\\<fox\\>/ INFO gnu word anchors",
    b"/\\bfox\\b/ INFO gnu word boundary",
    b"/^X-Words: \\w+ \\W/ INFO gnu w W",
    b"/^X-Digits: \\d/ INFO backslash d is literal d",
    b"/^X-Words: the|^Subject/ INFO alternation",
    b"/^X-Words: (the|a) (quick)/ INFO alternation no sub",
    b"/^X-Words/!/quick/ INFO second pattern negated",
    b"/^X-Words/!/nothing/ INFO second pattern",
    b"!/^X-Words/ INFO negated",
    b"/^X-Words/q INFO bad flag",
    b"/^X-Words( INFO no closing",
    b"/^X-Words: (the/ INFO unmatched paren",
    b"/^X-Words: the)/ INFO unmatched close paren",
    b"/*X-Words/ INFO ere leading star",
    b"/^X-Words: t{2,1}/ INFO bad interval",
    b"/^X-8bit: caf\xc3\xa9/ INFO utf-8 literal",
    b"/^X-Path: .*%/ INFO percent",
    b"/^X-Dollar: cost \\$5/ INFO escaped dollar",
    b"/^X-Empty:$/ INFO empty",
    b"/^(To|From|X-Words):.*(example|fox)/ WARN $1 $2",
    b"/^X-Words: (the|the quick) (quick|brown)/ INFO leftmost longest [$1][$2]",
    b"/^X-Digits: \\d/i INFO backslash d without i is a d",
    b"/^X-Words: \\D/ INFO backslash D is D or d under i",
    b"/^X-Words: [[:upper:]]+ quick/ INFO upper class is alpha under i",
    b"/^X-Words: [[:upper:]]+ quick/i INFO upper class without i",
    b"/^X-Words: [[-~]he/ INFO range from [ holds t but not T",
    b"/^X-Words: t{,2}he/ INFO glibc {,n}",
    b"/^X-Words: [[=t=]]he/ INFO equivalence class",
    b"/^X-Words: [[.t.]]he/ INFO collating symbol",
    b"/^X-Words: (t)\\2(h)/ INFO reference to a later group",
    b"/^X-Multi: a.^ b/ INFO caret after a consumed newline",
]

# Whole tables: order, if/endif, continuation lines, comments.
TABLES = {
    "order": b"/^X-Words:/ INFO first\n/^X-Words:/ INFO second\n/^Subject:/ INFO subj\n",
    "comments": b"# a comment\n   # indented comment\n\n/^Subject:/ INFO after comments\n",
    "continuation": b"/^Subject:/ INFO a\n\t  b\n#c\n   \n  c\n/^X-Words/ INFO next\n",
    "continuation-pattern": b"/^X-Words:\n the/ INFO joined pattern\n",
    "leading-space": b"  /^Subject:/ INFO leading\n/^X-Words:/ INFO ok\n",
    "if": b"if /^X-/\n/Words/ INFO in if\nendif\n/Words/ INFO outside\n/^Subject/ INFO subj\n",
    "if-negated": b"if !/^X-/\n/./ INFO not x $$\nendif\n",
    "if-nested": b"if /^X-/\nif /o/\n/(\\w+)$/ INFO nested $1\nendif\n/./ INFO x only\nendif\n",
    "if-case": b"IF /^X-W/\n/./ INFO upper IF\nENDIF\n",
    "if-no-endif": b"if /^X-Words/\n/./ INFO words\n/^Subject/ INFO never\n",
    "endif-no-if": b"endif\n/^Subject/ INFO after stray endif\n",
    "if-extra": b"if /^X-Words/ extra\n/./ INFO w\nendif junk\n/./ INFO other\n",
    "if-bad": b"if /^X-(/\n/^X-Words/ INFO inside bad if\nendif\n/^Subject/ INFO s\n",
    "if-bad-nested": b"if /^X-/\nif /(/\n/Words/ INFO a\nendif\n/Multi/ INFO b\nendif\n/./ INFO c\n",
    "if-continued": b"if /^X-/\n /Words/ INFO bad\nendif\n",
    "unrecognized": b"foo bar\n/^Subject/ INFO s\n",
    "crlf-table": b"/^Subject:/ INFO crlf\r\n/^X-Words/ INFO w\r\n",
    "tabs": b"/^Subject:/\tINFO\ttabbed\n",
    "empty": b"",
}


def postmap(kind: str, table: Path, mode: str, message: bytes) -> tuple[bytes, int]:
    proc = subprocess.run(
        [*POSTMAP_CMD, f"-{mode}q", "-", f"{kind}:{table}"], input=message, capture_output=True, timeout=30
    )
    return proc.stdout, proc.returncode


def ours(table: Path, kind: str, mode: str, message: bytes) -> tuple[bytes, int]:
    from mailwarden.rules.table import Kind

    parsed = load_table(table, Kind(kind))
    return query([parsed], message, "h" in mode, "b" in mode)


def _id(rule: bytes) -> str:
    return rule.decode("latin-1")[:50]


def _compare(tmp_path: Path, kind: str, content: bytes, modes: str = "hb") -> None:
    table = tmp_path / f"t.{kind}"
    table.write_bytes(content)
    for mode in modes:
        want = postmap(kind, table, mode, MESSAGE)
        got = ours(table, kind, mode, MESSAGE)
        assert got == want, f"-{mode}q differs for table {content!r}"


@pytest.mark.parametrize("rule", PCRE_RULES, ids=_id)
def test_pcre_rule(tmp_path: Path, rule: bytes) -> None:
    _compare(tmp_path, "pcre", rule + b"\n")


@pytest.mark.parametrize("rule", REGEXP_RULES, ids=_id)
def test_regexp_rule(tmp_path: Path, rule: bytes) -> None:
    _compare(tmp_path, "regexp", rule + b"\n")


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("kind", ["pcre", "regexp"])
def test_table(tmp_path: Path, kind: str, name: str) -> None:
    _compare(tmp_path, kind, TABLES[name], "h")


def test_cli_is_byte_identical(tmp_path: Path) -> None:
    """The real command line, stdout and exit status, not only the function behind it."""
    table = tmp_path / "t.pcre"
    table.write_bytes(b"/^Subject: (foo)/ REJECT got $1\n/^X-Multi:(.*)/ INFO [$1]\n")
    for args, mode in (([], "h"), (["--body"], "b")):
        proc = subprocess.run(
            ["mailwarden", "rules", "test", str(table), *args],
            input=MESSAGE,
            capture_output=True,
            timeout=30,
            executable=shutil.which("mailwarden") or str(Path(__file__).parents[2] / ".venv/bin/mailwarden"),
        )
        assert (proc.stdout, proc.returncode) == postmap("pcre", table, mode, MESSAGE)


def test_no_match_exit_status(tmp_path: Path) -> None:
    table = tmp_path / "t.pcre"
    table.write_bytes(b"/^X-Nothing-Here:/ INFO x\n")
    assert ours(table, "pcre", "h", MESSAGE) == postmap("pcre", table, "h", MESSAGE) == (b"", 1)


def test_multiple_tables_first_found(tmp_path: Path) -> None:
    a = tmp_path / "a.pcre"
    b = tmp_path / "b.pcre"
    a.write_bytes(b"/^X-Words/ INFO from a\n")
    b.write_bytes(b"/^X-Words/ INFO from b\n/^Subject/ INFO subject from b\n")
    proc = subprocess.run(
        [*POSTMAP_CMD, "-hq", "-", f"pcre:{a}", f"pcre:{b}"], input=MESSAGE, capture_output=True, timeout=30
    )
    got = query([load_table(a), load_table(b)], MESSAGE, True, False)
    assert got == (proc.stdout, proc.returncode)
