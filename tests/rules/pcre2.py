"""libpcre2-8 through ctypes, compiled as Postfix's dict_pcre compiles: the oracle for pcre: tables.

8-bit, no UTF, the default character tables (C locale). Postfix's defaults are PCRE2_CASELESS |
PCRE2_DOTALL; the table flags i m s x A E U toggle CASELESS MULTILINE DOTALL EXTENDED ANCHORED
DOLLAR_ENDONLY UNGREEDY.
"""

from __future__ import annotations

import ctypes
import ctypes.util

OPTIONS = {
    "i": 0x00000008,  # PCRE2_CASELESS
    "m": 0x00000400,  # PCRE2_MULTILINE
    "s": 0x00000020,  # PCRE2_DOTALL
    "x": 0x00000080,  # PCRE2_EXTENDED
    "A": 0x80000000,  # PCRE2_ANCHORED
    "E": 0x00000010,  # PCRE2_DOLLAR_ENDONLY
    "U": 0x00040000,  # PCRE2_UNGREEDY
}
_PCRE2_ERROR_NOMATCH = -1

_lib = ctypes.CDLL(ctypes.util.find_library("pcre2-8") or "libpcre2-8.so.0")
_lib.pcre2_compile_8.restype = ctypes.c_void_p
_lib.pcre2_compile_8.argtypes = [
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_uint32,
    ctypes.POINTER(ctypes.c_int),
    ctypes.POINTER(ctypes.c_size_t),
    ctypes.c_void_p,
]
_lib.pcre2_match_data_create_from_pattern_8.restype = ctypes.c_void_p
_lib.pcre2_match_data_create_from_pattern_8.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_lib.pcre2_match_8.restype = ctypes.c_int
_lib.pcre2_match_8.argtypes = [
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_size_t,
    ctypes.c_uint32,
    ctypes.c_void_p,
    ctypes.c_void_p,
]
_lib.pcre2_get_ovector_pointer_8.restype = ctypes.POINTER(ctypes.c_size_t)
_lib.pcre2_get_ovector_pointer_8.argtypes = [ctypes.c_void_p]
_lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
_lib.pcre2_match_data_free_8.argtypes = [ctypes.c_void_p]
_lib.pcre2_pattern_info_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
_PCRE2_INFO_CAPTURECOUNT = 4
_UNSET = ctypes.c_size_t(-1).value


def options_for(flags: str) -> int:
    bits = OPTIONS["i"] | OPTIONS["s"]
    for f in flags:
        bits ^= OPTIONS.get(f, 0)
    return bits


class Pcre:
    """One compiled pattern; `error` is PCRE2's error code (0: compiled), `offset` where."""

    def __init__(self, pattern: bytes, options: int) -> None:
        err = ctypes.c_int(0)
        off = ctypes.c_size_t(0)
        self._code = _lib.pcre2_compile_8(
            pattern, len(pattern), options, ctypes.byref(err), ctypes.byref(off), None
        )
        self.error = 0 if self._code else err.value
        self.offset = off.value
        self.groups = 0
        if self._code:
            count = ctypes.c_uint32(0)
            _lib.pcre2_pattern_info_8(self._code, _PCRE2_INFO_CAPTURECOUNT, ctypes.byref(count))
            self.groups = count.value
            self._md = _lib.pcre2_match_data_create_from_pattern_8(self._code, None)

    def __del__(self) -> None:
        if getattr(self, "_code", None):
            _lib.pcre2_match_data_free_8(self._md)
            _lib.pcre2_code_free_8(self._code)

    def search(self, text: bytes) -> list[tuple[int, int]] | None:
        """[(start, end)] of the match and each group ((-1, -1): unset), or None (also on errors)."""
        rc = _lib.pcre2_match_8(self._code, text, len(text), 0, 0, self._md, None)
        if rc < 0:
            return None
        ov = _lib.pcre2_get_ovector_pointer_8(self._md)
        pairs = []
        for k in range(self.groups + 1):
            start, end = ov[2 * k], ov[2 * k + 1]
            pairs.append((-1, -1) if start == _UNSET or k >= rc else (start, end))
        return pairs
