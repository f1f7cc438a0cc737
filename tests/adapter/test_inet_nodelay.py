"""inet: sockets: connections libmilter accepts have Nagle off (see process/sockets.no_delay)."""

from __future__ import annotations

import socket

from mailwarden.adapters.process.sockets import no_delay


def test_connections_accepted_from_the_listening_socket_have_nagle_off() -> None:
    with socket.socket() as listener:  # as libmilter's opensocket() leaves it: bound, listening
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        no_delay(listener.fileno())
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                assert not client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_unix_socket_is_left_as_it_is(tmp_path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "s"))
        listener.listen()
        no_delay(listener.fileno())  # no TCP options on a unix socket: nothing raised
        assert listener.fileno() >= 0
