"""Raw milter frames the protocol client does not build: bytes that are not UTF-8 where the
MTA sends a C string, and steps out of order."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from tests.support.milterclient import (
    P_NOCONNECT,
    P_NOHELO,
    P_NR_CONN,
    P_NR_HELO,
    SMFIC_CONNECT,
    SMFIC_HELO,
    MilterClient,
    Reply,
)

POSTFIX_CONNECT_MACROS = {"j": "mx.ci.test", "{daemon_name}": "mx.ci.test", "{daemon_addr}": "127.0.0.1",
                          "v": "Postfix 3.7.11"}


def cstr(*parts: bytes) -> bytes:
    return b"".join(p + b"\0" for p in parts)


def macro_frame(stage: bytes, macros: Mapping[bytes, bytes]) -> bytes:
    data = stage + b"".join(cstr(k, v) for k, v in macros.items())
    return struct.pack("!I", len(data) + 1) + b"D" + data


def connect_bytes(client: MilterClient, hostname: bytes, addr: str = "192.0.2.1",
                  macros: Mapping[bytes, bytes] | None = None) -> Reply:
    """CONNECT with a hostname given as bytes; `macros` replace Postfix's default `_`."""
    sent = {k.encode(): v.encode() for k, v in POSTFIX_CONNECT_MACROS.items()}
    sent.update(macros if macros is not None else {b"_": hostname + b" [" + addr.encode() + b"]"})
    client.sock.sendall(macro_frame(SMFIC_CONNECT, sent))
    data = cstr(hostname) + b"4" + struct.pack("!H", 40000) + cstr(addr.encode())
    client.connected = True
    return client._step("connect", SMFIC_CONNECT, data, P_NOCONNECT, P_NR_CONN)


def helo_bytes(client: MilterClient, name: bytes) -> Reply:
    return client._step("helo", SMFIC_HELO, cstr(name), P_NOHELO, P_NR_HELO)
