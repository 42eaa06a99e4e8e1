"""One harness session: the harness center of a client profile, its listeners, its control API and
its scenario; started, waited for (until the scenario is finished or the time is up) and stopped.

Cases find the session of their run with :func:`session_for` (keyed by the run id the client-mode
runner passes to ``run_suite``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from conformance.context import CaseContext
from conformance.harness.agency_center import AgencyCenter
from conformance.harness.app_center import AppCenter
from conformance.harness.control import ControlServer
from conformance.harness.gateway_center import GatewayCenter
from conformance.harness.pki import HarnessPki
from conformance.harness.recording import Recording
from conformance.harness.scenario import Scenario, Step
from conformance.harness.server import HarnessCenter, HarnessServer

CENTERS: dict[str, type[HarnessCenter]] = {
    "app": AppCenter,
    "reader-gateway": GatewayCenter,
    "agency": AgencyCenter,
}
CLIENT_ROLES = tuple(CENTERS)

_SESSIONS: dict[str, HarnessSession] = {}


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class HarnessSession:
    def __init__(
        self,
        role: str,
        listen: str,
        control: str = "127.0.0.1:0",
        *,
        tls: bool = True,
        workdir: Path | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        if role not in CENTERS:
            raise ValueError(f"unknown client role {role!r}; known: {', '.join(CENTERS)}")
        self.role = role
        self.listen = listen
        self.control_address = control
        self.tls = tls
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ansim-harness-"))
        self.announce = announce or (lambda _line: None)
        self.recording = Recording()
        self.center = CENTERS[role](self.recording)
        self.pki = HarnessPki(self.workdir / "pki") if tls else None
        steps = self.center.steps()  # type: ignore[attr-defined]
        self.scenario = Scenario(
            role, [*self._tls_steps(), *steps], announce=self.announce, clock=self.recording.now
        )
        self.center.scenario = self.scenario
        self.server: HarnessServer | None = None
        self.control: ControlServer | None = None
        self.started_at = 0.0

    def _tls_steps(self) -> list[Step]:
        if not self.tls:
            return []
        return [
            Step(
                "tls_check",
                "Point the client at the address below, as if it were a center: its certificate is NOT "
                "signed by the CA you were given, so the client must refuse the connection and send "
                'nothing. Then POST /done (curl -X POST -d \'{"step": "tls_check"}\' http://CONTROL/done).',
                lambda: {"address": self.untrusted_address},
            )
        ]

    @property
    def host(self) -> str:
        return split_host_port(self.listen)[0]

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"{self.host}:{self.server.port}"

    @property
    def untrusted_address(self) -> str:
        assert self.server is not None
        return f"{self.host}:{self.server.untrusted_port}"

    @property
    def control_url(self) -> str:
        assert self.control is not None
        return f"http://{split_host_port(self.control_address)[0]}:{self.control.port}"

    @property
    def ca_file(self) -> Path | None:
        return self.pki.ca_file if self.pki else None

    async def start(self) -> None:
        creds = untrusted = None
        if self.pki is not None:
            creds = grpc.ssl_server_credentials([(self.pki.server_key, self.pki.server_cert)])
            untrusted = grpc.ssl_server_credentials([(self.pki.untrusted_key, self.pki.untrusted_cert)])
        self.server = HarnessServer(
            self.center, self.listen, creds, untrusted, f"{self.host}:0" if untrusted else None
        )
        await self.server.start()
        host, port = split_host_port(self.control_address)
        self.control = ControlServer(host, port, self.scenario, self.recording, self.center)
        self.control.start()
        self.started_at = time.monotonic()
        self.scenario.bind(asyncio.get_running_loop())

    def instructions(self) -> list[str]:
        lines = [
            f"Harness center for the {self.role} profile is listening on {self.address}"
            + (f" (TLS; trust {self.ca_file})" if self.tls else " (insecure, plain text)"),
            f"Test driver: GET {self.control_url}/scenario, do the step, POST {self.control_url}/done",
        ]
        return lines

    async def wait(self, timeout_s: float) -> bool:
        """Wait until the scenario is finished; False when the time ran out first."""
        try:
            await asyncio.wait_for(self.scenario.finished.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
        if self.server is not None:
            await self.server.stop()

    def register(self, run_id: str) -> None:
        _SESSIONS[run_id] = self

    def unregister(self, run_id: str) -> None:
        _SESSIONS.pop(run_id, None)


def session_for(ctx: CaseContext) -> HarnessSession:
    """The harness session of the case's run; skips the case in server mode."""
    session = _SESSIONS.get(ctx.run.run_id)
    if session is None:
        ctx.skip("a client-mode case: run `ansim conformance run --client <profile> --listen HOST:PORT`")
    assert session is not None
    return session
