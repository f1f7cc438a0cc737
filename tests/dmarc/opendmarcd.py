"""Run the real OpenDMARC (/usr/sbin/opendmarc) on a unix socket with a private static DNS.

OpenDMARC has no nameserver option (opendmarc.conf(5)): it uses the libc resolver, so it runs in
a private mount namespace whose /etc/resolv.conf points at a LoopbackDns serving our StaticZone.
It does not verify DKIM itself; it reads DKIM and SPF results from Authentication-Results headers
whose authserv-id is in TrustedAuthservIDs, which is how the corpus hands it the same inputs
mailwarden gets as facts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import publicsuffixlist
from loopdns import LoopbackDns, resolv_wrapper

OPENDMARC = "/usr/sbin/opendmarc"
PSL = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat")


def available() -> str:
    """'' when OpenDMARC can run here, else why not."""
    if not Path(OPENDMARC).exists():
        return "opendmarc is not installed"
    if os.geteuid() != 0:
        return "needs root (mount namespace for a private resolv.conf)"
    if shutil.which("unshare") is None:
        return "unshare(1) missing"
    probe = subprocess.run(resolv_wrapper(Path("/etc/resolv.conf"), ["true"]), capture_output=True)
    if probe.returncode != 0:
        return "cannot create a mount namespace: " + probe.stderr.decode(errors="replace").strip()
    return ""


class OpenDmarc:
    def __init__(self, workdir: Path, dns: LoopbackDns, trusted: str = "upstream.test",
                 authserv_id: str = "opendmarc.test") -> None:
        self.workdir = workdir
        self.socket_path = workdir / "opendmarc.sock"
        self.authserv_id = authserv_id
        ignore = workdir / "ignore.hosts"
        ignore.write_text("")  # the default ignores 127.0.0.1; we ignore nobody
        conf = workdir / "opendmarc.conf"
        conf.write_text("\n".join([
            f"AuthservID {authserv_id}",
            f"TrustedAuthservIDs {trusted}",
            f"PublicSuffixList {PSL}",
            f"IgnoreHosts {ignore}",
            "RejectFailures true",
            "HoldQuarantinedMessages true",
            "RejectMultiValueFrom true",
            "RequiredHeaders false",
            "SPFIgnoreResults false",
            "SPFSelfValidate false",
            "FailureReports false",
            "Syslog false",
            f"Socket local:{self.socket_path}",
            "",
        ]))
        resolv = dns.resolv_conf(workdir)
        argv = resolv_wrapper(resolv, [OPENDMARC, "-f", "-c", str(conf)])
        self.log = (workdir / "opendmarc.log").open("wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    @property
    def spec(self) -> str:
        return f"unix:{self.socket_path}"

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opendmarc exited: {(self.workdir / 'opendmarc.log').read_text()}")
            if self.socket_path.exists():
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(str(self.socket_path))
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.05)
        raise RuntimeError("opendmarc did not open its socket")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
