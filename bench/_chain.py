"""milterload for a chain of milters, driven as Postfix drives several: message by message
through each in turn, each seeing the message as the previous one left it.

    python bench/_chain.py unix:/a.sock unix:/b.sock -- [milterload options]

Postfix hands the finished message to its milters one after the other (cleanup_milter.c): the
second milter gets the headers the first one added (OpenDMARC reads OpenDKIM's
Authentication-Results). Here each message runs its whole transaction on the first milter, then
on the second with the first one's header edits applied; connections per milter as milterload
opens them. Latency is the sum; --expect-header sees every milter's added headers. The result
is milterload's JSON (../shared/tools/milterload.py, imported, not copied).
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
from typing import Any

from _milters import LOAD

_spec = importlib.util.spec_from_file_location("milterload", LOAD)
assert _spec is not None and _spec.loader is not None
ml: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ml)

_BASE: Any = ml.MilterConnection
SOCKETS: list[tuple[str, Any]] = []  # (kind, address) of each milter after the first


class _Stage(_BASE):  # type: ignore[misc]
    """One milter of the chain: remembers its edits instead of recording the message."""

    mods: list[tuple[bytes, bytes]] = []
    result: tuple[str, bytes] | None = None

    def record(self, msg: Any, stage: str, res: bytes, mods: list[tuple[bytes, bytes]],
               elapsed: float) -> None:
        self.mods, self.result = mods, (stage, res)


class Chain:
    """Stands in for milterload's MilterConnection: the same open/message/close."""

    def __init__(self, args: Any, stats: Any) -> None:
        self.stats = stats
        self.stages = [_Stage(args, stats)]
        for kind, addr in SOCKETS:
            a = copy.copy(args)
            a.socket_kind, a.socket_addr = kind, addr
            self.stages.append(_Stage(a, stats))
        self._edited: dict[tuple[int, bytes], Any] = {}

    async def open(self) -> tuple[str, bytes] | None:
        for stage in self.stages:
            early = await stage.open()
            if early:
                return early  # type: ignore[no-any-return]
        return None

    async def message(self, msg: Any, seq: int, t0: float) -> tuple[str, bytes]:
        mods: list[tuple[bytes, bytes]] = []
        stage_name, res = "", b""
        for stage in self.stages:
            stage_name, res = await stage.message(msg, seq, t0)
            mods += stage.mods
            if res[:1] not in (b"a", b"c"):
                break
            msg = self._apply(msg, stage.mods)
        _BASE.record(self.stages[-1], msg, stage_name, res, mods, time.perf_counter() - t0)
        return stage_name, res

    def _apply(self, msg: Any, mods: list[tuple[bytes, bytes]]) -> Any:
        """The message with the header edits applied (cached: the load repeats its messages)."""
        key = (id(msg), b"\1".join(c + d for c, d in mods))
        out = self._edited.get(key)
        if out is None:
            headers = list(msg.headers)
            for cmd, data in mods:
                if cmd == b"h":
                    name, _, value = data.partition(b"\0")
                    headers.append((name, value.rstrip(b"\0")))
                elif cmd == b"i":
                    index = int.from_bytes(data[:4], "big")
                    name, _, value = data[4:].partition(b"\0")
                    headers.insert(index, (name, value.rstrip(b"\0")))
            out = copy.copy(msg)
            out.headers, out._hdr_cache = headers, {}
            self._edited[key] = out
        return out

    def close(self, quit: bool = True) -> None:
        for stage in self.stages:
            stage.close(quit)


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--")
    first, *rest = argv[:split]
    SOCKETS.extend(ml.parse_socket(s) for s in rest)
    ml.MilterConnection = Chain
    result: int = ml.main(["--socket", first, *argv[split + 1:]])
    return result


if __name__ == "__main__":
    sys.exit(main())
