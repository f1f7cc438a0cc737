"""libmilter's listener alone, under a test's control: for tests/adapter/test_libmilter_assumptions.py.

Usage: python listener_probe.py unix:PATH [--main-takes-signals]. Opens the socket with libmilter
(pymilter's C module), runs libmilter's main in a thread as a worker does, and then reads
commands on stdin, answering each with one line on stdout:

- ``idle``: the abstract address of a listening socket nobody else knows (hex), made once;
- ``hold``: point libmilter's listening descriptor at that socket (dup2), without waking it;
- ``resume``: point it back at the real socket, without waking it;
- ``interrupt N``: send the listener thread N signals (a no-op handler: poll() gets EINTR);
- ``alive``: whether libmilter's main is still running;
- ``taken``: how many SIGTERM/SIGHUP/SIGINT the main thread's handlers took.

SIGTERM, SIGHUP and SIGINT go to libmilter's own signal thread, as in a lone libmilter; with
--main-takes-signals the main thread has handlers for them and never blocks them, as a worker.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

import Milter

from mailwarden.adapters.process import sockets

libmilter = Milter.milter


class Probe(Milter.Base):  # type: ignore[misc]
    """Accepts everything: only the listener is under test."""


def main() -> None:
    spec = sys.argv[1]
    Milter.factory = Probe
    libmilter.set_connect_callback(Milter.connect_callback)
    libmilter.set_close_callback(Milter.close_callback)
    libmilter.register("probe", negotiate=Milter.negotiate_callback)
    libmilter.setconn(spec)
    before = sockets.socket_fds()
    libmilter.opensocket(True)
    fd = sockets.added_listener(before)
    assert fd is not None
    real = os.dup(fd)
    os.set_blocking(fd, False)
    signal.signal(signal.SIGUSR2, lambda signo, frame: None)
    stops = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
    taken: list[int] = []
    if "--main-takes-signals" in sys.argv:
        for signo in stops:
            signal.signal(signo, lambda n, frame: taken.append(n))
    else:
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    done = threading.Event()

    def run() -> None:
        try:
            libmilter.main()
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert thread.ident is not None
    idle: socket.socket | None = None
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, *arg = line.split()
        if cmd == "idle":
            if idle is None:
                idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                idle.bind("")
                idle.listen(8)
                idle.setblocking(False)
            print(idle.getsockname().hex(), flush=True)
        elif cmd == "hold":
            assert idle is not None
            os.dup2(idle.fileno(), fd, inheritable=False)
            print("ok", flush=True)
        elif cmd == "resume":
            os.dup2(real, fd, inheritable=False)
            print("ok", flush=True)
        elif cmd == "interrupt":
            for _ in range(int(arg[0])):
                signal.pthread_kill(thread.ident, signal.SIGUSR2)
            print("ok", flush=True)
        elif cmd == "alive":
            print("yes" if not done.is_set() else "no", flush=True)
        elif cmd == "taken":
            print(len(taken), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
