"""Reading the authentication headers others wrote: tolerant, never raising.

Incoming Authentication-Results and Received-SPF headers are attacker-controlled text, so the
parsers here accept anything and answer None when they cannot tell.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[^\s;()\"]+")


def strip_comments(text: str) -> str:
    """`text` without RFC 5322 comments (nested, with quoted-pairs); quoted strings kept."""
    out: list[str] = []
    depth = 0
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and (depth or quoted):
            if not depth:
                out.append(text[i:i + 2])
            i += 2
            continue
        if quoted:
            out.append(ch)
            quoted = ch != '"'
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth:
            pass
        else:
            if ch == '"':
                quoted = True
            out.append(ch)
        i += 1
    return "".join(out)


def authserv_id(value: str) -> str | None:
    """The authserv-id of an Authentication-Results value, lower case; None if there is none."""
    text = strip_comments(value.replace("\r", " ").replace("\n", " ")).strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        found = text[1:end] if end > 0 else ""
    else:
        m = _TOKEN.match(text)
        found = m.group(0) if m else ""
    found = found.strip().rstrip(".").lower()
    return found or None


_RESINFO = re.compile(r"^\s*([a-z0-9_-]+)\s*(?:/\s*\d+\s*)?=\s*([a-z0-9_-]+)(.*)$", re.I | re.S)
# A quoted string (a reason=) is matched whole, so no property is read out of its inside.
_QUOTED = r"\"(?:[^\"\\]|\\.)*\""
_PROP = re.compile(rf"{_QUOTED}|([a-z0-9_-]+)\.([a-z0-9_.-]+)\s*=\s*({_QUOTED}|[^\s;]+)", re.I)


def results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, result, {"ptype.property": value}) per resinfo of an A-R value."""
    text = strip_comments(value.replace("\r", " ").replace("\n", " "))
    found = []
    for part in split_outside(text, ";")[1:]:
        m = _RESINFO.match(part)
        if not m:
            continue
        props = {f"{p.lower()}.{n.lower()}": v.strip('"') for p, n, v in _PROP.findall(m.group(3)) if p}
        found.append((m.group(1).lower(), m.group(2).lower(), props))
    return found


def split_outside(text: str, sep: str) -> list[str]:
    """`text` split at each `sep` (a character other than a quote, parenthesis or backslash)
    that stands outside quoted strings and (comments)."""
    pieces = text.split(sep)
    if len(pieces) == 1:
        return pieces
    # Split everywhere, then join pieces back where the separator was quoted or in a comment;
    # only pieces with a quote, parenthesis or backslash change where we are.
    parts: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    depth = 0
    for n, piece in enumerate(pieces):
        if n:
            if quoted or depth:
                escaped = False  # the separator was the escaped character, if one was due
            else:
                parts.append(sep.join(cur))
                cur = []
        cur.append(piece)
        if '"' in piece or "(" in piece or ")" in piece or "\\" in piece:
            for ch in piece:
                if escaped:
                    escaped = False
                elif ch == "\\" and quoted:
                    escaped = True  # a quoted-pair: \" does not end the string
                elif ch == '"':
                    quoted = not quoted
                elif not quoted and ch == "(":
                    depth += 1
                elif not quoted and ch == ")":
                    depth = max(depth - 1, 0)
    parts.append(sep.join(cur))
    return parts


_RSPF = re.compile(r"^\s*([a-z]+)\b(.*)$", re.I | re.S)
_KV = re.compile(r"([a-z-]+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s;]+)", re.I)


def received_spf(value: str) -> tuple[str, dict[str, str]] | None:
    """(result, {key: value}) of a Received-SPF header (RFC 7208 section 9.1); None if unreadable."""
    text = value.replace("\r", " ").replace("\n", " ")
    m = _RSPF.match(text)
    if not m:
        return None
    keys = {k.lower(): v.strip('"') for k, v in _KV.findall(strip_comments(m.group(2)))}
    return m.group(1).lower(), keys
