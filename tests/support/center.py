"""Start a real reference center process on loopback and talk to it (reusable by every test).

center = start_center(tmp_path / "center")            # ansim serve --demo, TLS, free port
async with center.mtls_channel("POLICE_OFFICER") as ch:  # mutual TLS with that role's certificate
    stub = SomeServiceStub(ch)
    await stub.Method(request, metadata=center.metadata("POLICE_OFFICER"))
assert center.terminate() == 0                        # SIGTERM, wait, exit code
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


@dataclass
class CenterProcess:
    """A running ``ansim serve`` process and what it announced on stdout."""

    process: subprocess.Popen[str]
    data_dir: Path
    address: str
    ca: Path | None
    #: Address of the mutual-TLS listener (officers, peer centers), if the center has one.
    mtls_address: str | None = None
    tokens: dict[str, Path] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def tls(self) -> bool:
        return self.ca is not None

    def token(self, role: str) -> str:
        """The demo bearer token of ``role`` (Role name without ROLE_, e.g. ``POLICE_OFFICER``)."""
        return self.tokens[role].read_text(encoding="utf-8").strip()

    def metadata(self, role: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(role)}"),)

    def channel(self, *, plain: bool = False) -> grpc.aio.Channel:
        """A channel to the main listener: TLS trusting the demo CA, or plain TCP when the center runs
        insecure or ``plain`` is asked for."""
        if plain or not self.tls:
            return grpc.aio.insecure_channel(self.address)
        assert self.ca is not None
        return grpc.aio.secure_channel(self.address, grpc.ssl_channel_credentials(self.ca.read_bytes()))

    def mtls_channel(self, role: str) -> grpc.aio.Channel:
        """A mutual-TLS channel presenting ``role``'s demo client certificate."""
        assert self.ca is not None and self.mtls_address is not None, "center has no mutual-TLS listener"
        clients = self.data_dir / "pki" / "clients"
        creds = grpc.ssl_channel_credentials(
            self.ca.read_bytes(),
            (clients / f"{role.lower()}.key").read_bytes(),
            (clients / f"{role.lower()}.pem").read_bytes(),
        )
        return grpc.aio.secure_channel(self.mtls_address, creds)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code (kills and fails if it does not stop in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"center did not stop within {timeout}s after SIGTERM\n{self.log()}"
            ) from None


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO_ROOT), str(REPO_ROOT / "gen" / "python")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.rstrip("\n"))
    lines.put(None)


def start_center(
    data_dir: Path,
    *extra_args: str,
    demo: bool = True,
    insecure_dev: bool = False,
    plugins: Sequence[str] = (),
    timeout: float = START_TIMEOUT_S,
) -> CenterProcess:
    """Run ``ansim serve`` on 127.0.0.1 with a free port and wait until it announced ANSIM_READY."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "reference_server.cli", "serve", "--data-dir", str(data_dir)]
    args += ["--listen", "127.0.0.1:0"]
    args += ["--demo"] if demo else []
    args += ["--insecure-dev"] if insecure_dev else []
    for plugin in plugins:
        args += ["--plugin", plugin]
    args += list(extra_args)
    log_path = data_dir / "server.log"
    log_file = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        args, cwd=REPO_ROOT, env=server_env(), stdout=subprocess.PIPE, stderr=log_file, text=True, bufsize=1
    )
    log_file.close()
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    address, mtls_address, ca, tokens = "", None, None, {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"center did not get ready in {timeout}s\n{log_path.read_text()}") from None
        if line is None:
            process.wait()
            raise AssertionError(
                f"center exited with {process.returncode} before it was ready\n{log_path.read_text()}"
            )
        kind, _, rest = line.partition(" ")
        if kind == "ANSIM_LISTENING":
            address = rest
        elif kind == "ANSIM_LISTENING_MTLS":
            mtls_address = rest
        elif kind == "ANSIM_CA":
            ca = Path(rest)
        elif kind == "ANSIM_TOKEN":
            role, _, path = rest.partition(" ")
            tokens[role] = Path(path)
        elif kind == "ANSIM_READY":
            return CenterProcess(process, data_dir, address, ca, mtls_address, tokens, log_path)
