"""inet: sockets: connections libmilter accepts have Nagle off (see pymilter._no_delay)."""

from __future__ import annotations

import socket

from mailwarden.adapters.pymilter import _no_delay, _socket_fds


def test_connections_accepted_from_the_listening_socket_have_nagle_off() -> None:
    before = _socket_fds()
    with socket.socket() as listener:  # as libmilter's opensocket() leaves it: bound, listening
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        _no_delay(before)
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                assert not client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_sockets_open_before_are_left_alone() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        _no_delay(_socket_fds())
        assert not listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
