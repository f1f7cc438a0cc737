"""The ceiling for bench/pipeline_bench.py: a pymilter milter that reads every header and the body
and does nothing else, in as many processes as mailwarden's workers.

    python bench/reading_milter.py unix:/path/to.sock [workers]

It asks for every step mailwarden asks for (connect, HELO, MAIL, RCPT, headers, end of headers,
body, end of message), keeps the headers and body chunks, and accepts. Workers share one listening
socket, opened before they fork, as mailwarden's do.
"""

from __future__ import annotations

import os
import sys

import Milter


class Reading(Milter.Base):  # type: ignore[misc]
    def __init__(self) -> None:
        self.headers: list[tuple[str, bytes]] = []
        self.chunks: list[bytes] = []

    @Milter.noreply
    def connect(self, hostname: str, family: int, hostaddr: object) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def hello(self, helo: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def envfrom(self, mailfrom: str, *params: str) -> int:
        self.headers, self.chunks = [], []
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def envrcpt(self, to: str, *params: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def header(self, name: str, value: bytes) -> int:
        self.headers.append((name, value))
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def eoh(self) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def body(self, chunk: bytes) -> int:
        self.chunks.append(chunk)
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def eom(self) -> int:
        return Milter.ACCEPT  # type: ignore[no-any-return]


def main() -> None:
    spec = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    Milter.factory = Reading
    ext = Milter.milter
    # Wired as mailwarden wires itself (adapters/pymilter.py: straight to the methods, no
    # decoding shims), with the socket opened before the workers fork.
    ext.set_connect_callback(Milter.connect_callback)
    ext.set_helo_callback(lambda ctx, host: ctx.getpriv().hello(host))
    ext.set_envfrom_callback(lambda ctx, *b: ctx.getpriv().envfrom(*b))
    ext.set_envrcpt_callback(lambda ctx, *b: ctx.getpriv().envrcpt(*b))
    ext.set_header_callback(lambda ctx, f, v: ctx.getpriv().header(f, v))
    ext.set_eoh_callback(lambda ctx: ctx.getpriv().eoh())
    ext.set_body_callback(lambda ctx, chunk: ctx.getpriv().body(chunk))
    ext.set_eom_callback(lambda ctx: ctx.getpriv().eom())
    ext.set_abort_callback(lambda ctx: Milter.CONTINUE)
    ext.set_close_callback(Milter.close_callback)
    ext.setconn(spec)
    ext.settimeout(60)
    ext.register("reading", negotiate=Milter.negotiate_callback)
    ext.opensocket(True)
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    ext.main()


if __name__ == "__main__":
    main()
