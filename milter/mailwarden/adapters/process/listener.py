"""A worker's hold on libmilter's listening descriptor: accept, hold back, or stop for good.

libmilter's listener cannot be told to pause, but each time round its loop it polls and accepts
on whatever file its descriptor number names (tests/adapter/test_libmilter_assumptions.py holds
each fact this relies on). So holding back is pointing that number at a listening socket of the
worker's own that nobody connects to, and accepting again is pointing it back. A poll() already
waiting keeps waiting on the file of its first pass, so pointing it back also interrupts the
listener thread with a signal, on which libmilter polls again (EINTR is retried). The real
socket is non-blocking, so a listener woken for a connection another worker took goes back to
poll() (EAGAIN is retried) instead of blocking in accept().

Stopping never goes through libmilter's own stop: its clean-up unlinks the socket path when the
process is not root, and the sibling workers still serve it. A worker stops by holding back for
good and closing its copies of the real socket; the supervisor alone removes the file.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable


class Listener:
    """Made in the worker, before libmilter's listener thread starts on `fd`."""

    def __init__(self, fd: int, interrupt: Callable[[], None] = lambda: None) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._real: int | None = os.dup(fd)
        os.set_blocking(fd, False)  # shared by every worker, as the flag lives with the file
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.bind("")  # Linux picks a fresh abstract address
        idle.listen(8)
        idle.setblocking(False)
        self._idle = idle
        self.holding = False
        self.interrupt = interrupt
        """Breaks the listener thread out of poll() with EINTR; set once that thread exists."""

    def hold(self) -> None:
        """Stop accepting. A listener already waiting on the real socket may take one more."""
        with self._lock:
            if not self.holding:
                os.dup2(self._idle.fileno(), self._fd, inheritable=False)
                self.holding = True

    def resume(self) -> None:
        """Accept again, at once."""
        with self._lock:
            if not self.holding or self._real is None:
                return
            os.dup2(self._real, self._fd, inheritable=False)
            self.holding = False
        # Else a listener waiting on the idle socket would look again only at libmilter's 5 s
        # poll timeout, with connections queued meanwhile.
        self.interrupt()

    def close(self) -> None:
        """Never accept again, and let go of the real socket (the last process to let go of it
        closes it, and Postfix's next connect is refused rather than left waiting)."""
        self.hold()
        with self._lock:
            if self._real is not None:
                os.close(self._real)
                self._real = None
        self.interrupt()  # poll() on the idle socket from now on, not on the real one
