"""glibc's regcomp()/regexec() through ctypes, in the C locale: the engine Postfix's regexp: tables use.

The oracle for regexp tables where postmap would be too slow, and the only way to ask glibc
itself what an escape or a bracket means (see test_glibc_regex.py). Postfix compiles with
REG_EXTENDED | REG_ICASE by default; the i and x flags toggle them, m toggles REG_NEWLINE.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager

REG_EXTENDED, REG_ICASE, REG_NEWLINE, REG_NOSUB = 1, 2, 4, 8
_LC_ALL_MASK = 0x1FBF  # glibc's LC_ALL_MASK

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.newlocale.restype = ctypes.c_void_p
_libc.newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
_libc.uselocale.restype = ctypes.c_void_p
_libc.uselocale.argtypes = [ctypes.c_void_p]
_libc.regcomp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
_libc.regexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int]
_libc.regfree.argtypes = [ctypes.c_void_p]
_C_LOCALE = _libc.newlocale(_LC_ALL_MASK, b"C", None)


class _RegMatch(ctypes.Structure):
    _fields_ = [("rm_so", ctypes.c_int), ("rm_eo", ctypes.c_int)]


@contextmanager
def _c_locale() -> Iterator[None]:
    """This thread in the C locale (Python itself runs in the user's LC_CTYPE, often UTF-8)."""
    old = _libc.uselocale(_C_LOCALE)
    try:
        yield
    finally:
        _libc.uselocale(old)


def cflags_for(flags: str, substitutes: bool = True) -> int:
    """regcomp() flags for a regexp: table pattern's flags, as dict_regexp.c sets them."""
    bits = REG_EXTENDED | REG_ICASE
    for f in flags:
        bits ^= {"i": REG_ICASE, "x": REG_EXTENDED, "m": REG_NEWLINE}.get(f, 0)
    return bits if substitutes else bits | REG_NOSUB


class Regex:
    """One compiled pattern; `error` is regcomp()'s code (0: compiled)."""

    def __init__(self, pattern: bytes, cflags: int) -> None:
        self._buf = ctypes.create_string_buffer(256)  # regex_t is 64 bytes on x86_64
        with _c_locale():
            self.error = _libc.regcomp(self._buf, pattern, cflags)
        self.nsub = ctypes.c_size_t.from_buffer(self._buf, 48).value if self.error == 0 else 0
        self.nmatch = self.nsub + 1
        """How many of (match, groups...) search() reports by default."""

    def __del__(self) -> None:
        if getattr(self, "error", 1) == 0:
            _libc.regfree(self._buf)

    def search(self, text: bytes, nmatch: int | None = None) -> list[tuple[int, int]] | None:
        """[(start, end)] of the match and its groups ((-1, -1): unset), or None; text has no NUL."""
        assert self.error == 0
        nmatch = self.nmatch if nmatch is None else nmatch
        matches = (_RegMatch * nmatch)()
        with _c_locale():
            rc = _libc.regexec(self._buf, text, nmatch, matches, 0)
        if rc != 0:
            return None
        return [(m.rm_so, m.rm_eo) for m in matches]
