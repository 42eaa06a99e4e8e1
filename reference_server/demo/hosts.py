"""Launch and watch the host processes of the national simulation (:mod:`.multihost`): each runs a
group of centers, announces their addresses on stdout, and is stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from reference_server.demo.readiness import wait_until_ready

READY_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Addresses:
    tls: str
    mtls: str


@dataclass
class Host:
    """One ``multihost`` process and the centers it announced."""

    name: str
    popen: subprocess.Popen[str]
    centers: dict[str, Addresses] = field(default_factory=dict)
    _ready: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def launch(cls, name: str, configs: list[Path], log_file: Path) -> Host:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log_file.open("ab") as sink:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", "reference_server.demo.multihost", *map(str, configs)],
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
                env=env,
            )
        host = cls(name, popen)
        threading.Thread(target=host._read_stdout, daemon=True, name=f"{name}-stdout").start()
        return host

    def _read_stdout(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "ANSIM_CENTER":
                self.centers[parts[1]] = Addresses(parts[2], parts[3])
            elif parts[:1] == ["ANSIM_READY"]:
                self._ready.set()

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:  # noqa: ASYNC109
        await wait_until_ready(self.popen, self._ready, self.name, timeout, poll_s=0.1)

    def rss_bytes(self) -> int:
        return rss_bytes(self.popen.pid)

    def terminate(self) -> None:
        """SIGTERM without waiting, so that several hosts stop at once."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free right now (all held open until every one is chosen).

    They stay free until the centers bind them in practice: Linux hands out odd ports to ``bind``
    to port 0 and prefers even ones for the source port of ``connect``. Should one be taken
    meanwhile, its center fails to start and the run stops with that host's error.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process (Linux ``/proc``), 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
