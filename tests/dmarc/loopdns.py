"""A tiny DNS server on a loopback address answering from a StaticZone, for real tools
(OpenDMARC, libspf2) that read /etc/resolv.conf and have no nameserver option.

UDP and TCP on port 53 of one 127.x.y.z address; TIMEOUT/SERVFAIL faults of the zone become
SERVFAIL (a real timeout would only slow the tests down). Run the tool in a private mount
namespace whose /etc/resolv.conf names this address: see `resolv_wrapper`.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mailwarden.errors import DnsTempError
from mailwarden.resolver.static import StaticZone


class LoopbackDns:
    def __init__(self, zone: StaticZone, address: str | None = None) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []
        # Port 53 is fixed (resolv.conf has no port), so parallel runs each take their own
        # loopback address out of 127.53.0.0/16.
        for _ in range(20):
            self.address = address or f"127.53.{random.randint(0, 255)}.{random.randint(1, 254)}"
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self._udp.bind((self.address, 53))
                self._tcp.bind((self.address, 53))
                break
            except OSError:
                self._udp.close()
                self._tcp.close()
                if address:
                    raise
        else:
            raise OSError("no free loopback address for the test DNS server")
        self._tcp.listen(16)
        self._stop = False
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self._threads:
            t.start()

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        q = query.question[0]
        name = q.name.to_text()
        rdtype = dns.rdatatype.to_text(q.rdtype)
        self.queries.append((name, rdtype))
        try:
            ans = self.zone.query(name, rdtype)
        except DnsTempError:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if not ans.exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        if ans.records:
            rrset = dns.rrset.RRset(q.name, dns.rdataclass.IN, q.rdtype)
            for rec in ans.records:
                rrset.add(_rdata(q.rdtype, rec), ttl=ans.ttl or 300)
            response.answer.append(rrset)
        return response.to_wire(max_size=65535)

    def _serve_udp(self) -> None:
        while not self._stop:
            try:
                data, peer = self._udp.recvfrom(4096)
            except OSError:
                return
            self._on_udp_query(data, peer)

    def _on_udp_query(self, data: bytes, peer: tuple[str, int]) -> None:
        """Answer one UDP query (a subclass may delay or drop it)."""
        try:
            out = self.answer(data)
        except Exception:
            return
        if len(out) > 512:
            # Truncate: the client retries over TCP, as a real server makes it.
            msg = dns.message.from_wire(data)
            resp = dns.message.make_response(msg)
            resp.flags |= dns.flags.TC
            out = resp.to_wire()
        self._udp.sendto(out, peer)

    def _serve_tcp(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    head = _recv(conn, 2)
                    data = _recv(conn, struct.unpack("!H", head)[0])
                    out = self.answer(data)
                    conn.sendall(struct.pack("!H", len(out)) + out)
                except Exception:
                    continue

    def close(self) -> None:
        self._stop = True
        self._udp.close()
        self._tcp.close()

    def resolv_conf(self, directory: Path) -> Path:
        path = directory / "resolv.conf"
        path.write_text(f"nameserver {self.address}\noptions timeout:1 attempts:1\n")
        return path


def _recv(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise OSError("short read")
        buf += chunk
    return buf


def _rdata(rdtype: int, record: str | bytes) -> dns.rdata.Rdata:
    if rdtype == dns.rdatatype.TXT:
        raw = record if isinstance(record, bytes) else record.encode()
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        text = " ".join('"' + c.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"') + '"'
                        for c in chunks)
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
    text = record.decode() if isinstance(record, bytes) else record
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def resolv_wrapper(resolv_conf: Path, argv: list[str]) -> list[str]:
    """argv run in a private mount namespace where /etc/resolv.conf is `resolv_conf`."""
    script = f'mount --bind "{resolv_conf}" /etc/resolv.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
