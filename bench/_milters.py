"""Starting and stopping milter processes for the benchmarks, and driving them with milterload."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = ROOT.parent / "shared" / "tools" / "milterload.py"


def wait_socket(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    """Wait until the milter accepts connections on unix socket `path`."""
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.05)


def start(cmd: list[str], sock: Path, what: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(sock, proc, what)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def milterload(sock: Path, messages: int, concurrency: int, extra: list[str]) -> dict[str, object]:
    """Run ../shared/tools/milterload.py against `sock`; its JSON result."""
    out = subprocess.run(
        [sys.executable, str(LOAD), "--socket", f"unix:{sock}", "-n", str(messages),
         "-c", str(concurrency), "--json", *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result
