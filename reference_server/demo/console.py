"""The demo console: the timeline it prints, the stubs it calls with, and the mirror receiver with
which it plays the home center of a visiting app user in the federation drill."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import common_pb2, federation_pb2, federation_pb2_grpc
from rich.console import Console
from rich.table import Table

from reference_server.demo.cluster import CenterCerts, Cluster

CONSOLE_ID = "demo-console"
CONSOLE = f"centers/{CONSOLE_ID}"


@dataclass
class Line:
    seconds: float
    center: str
    actor: str
    what: str
    latency_ms: float | None = None
    ok: bool = True


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    lines: list[Line] = field(default_factory=list)

    def add(
        self, center: str, actor: str, what: str, latency_ms: float | None = None, ok: bool = True
    ) -> None:
        self.lines.append(Line(time.monotonic() - self.started, center, actor, what, latency_ms, ok))

    def print(self, console: Console) -> None:
        table = Table(title="Ansim federation demo — timeline", show_lines=False)
        for column in ("t (s)", "center", "actor", "what happened", "latency"):
            table.add_column(column)
        for line in sorted(self.lines, key=lambda item: item.seconds):
            style = "" if line.ok else "red"
            latency = f"{line.latency_ms:.0f} ms" if line.latency_ms is not None else ""
            table.add_row(f"{line.seconds:6.2f}", line.center, line.actor, line.what, latency, style=style)
        console.print(table)


class MirrorReceiver(federation_pb2_grpc.FederationServiceServicer):
    """The console's FederationService: it receives the handling centers' mirror events for the
    emergencies it forwarded, applies them in order exactly once, and shows them on the timeline."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.applied: dict[str, int] = defaultdict(int)
        self.events: dict[str, list[federation_pb2.MirrorEvent]] = defaultdict(list)

    async def MirrorStatus(
        self, request: federation_pb2.MirrorStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> federation_pb2.MirrorStatusResponse:
        key = request.handling_emergency
        for event in sorted(request.events, key=lambda e: e.sequence):
            if event.sequence != self.applied[key] + 1:
                continue
            self.applied[key] = event.sequence
            self.events[key].append(event)
            center = "/".join(key.split("/")[:2])
            self.timeline.add(CONSOLE, center, f"mirror #{event.sequence}: {describe(event)}")
        return federation_pb2.MirrorStatusResponse(last_applied_sequence=self.applied[key])

    def kinds(self, handling: str) -> list[str]:
        return [describe(e) for e in self.events.get(handling, [])]


def describe(event: federation_pb2.MirrorEvent) -> str:
    kind = event.WhichOneof("event")
    if kind == "started":
        reason = federation_pb2.ForwardReason.Name(event.started.reason).removeprefix("FORWARD_REASON_")
        return f"started ({reason})"
    if kind == "state_change":
        from ansim.v1 import emergency_pb2

        state = emergency_pb2.EmergencyState.Name(event.state_change.state).removeprefix("EMERGENCY_STATE_")
        target = f" → {event.state_change.transferred_to}" if event.state_change.transferred_to else ""
        return f"state {state}{target}"
    return kind or "?"


async def start_receiver(
    cluster: Cluster, certs: CenterCerts, timeline: Timeline
) -> tuple[grpc.aio.Server, MirrorReceiver, str]:
    receiver = MirrorReceiver(timeline)  # type: ignore[abstract]
    server = grpc.aio.server()
    federation_pb2_grpc.add_FederationServiceServicer_to_server(receiver, server)
    credentials = grpc.ssl_server_credentials(
        [(certs.server_key.read_bytes(), certs.server_cert.read_bytes())],
        root_certificates=cluster.pki.ca_cert.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, receiver, f"127.0.0.1:{port}"


def tls_channel(
    ca: Path, target: str, server_name: str, cert: Path | None = None, key: Path | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    return grpc.aio.secure_channel(
        target, credentials, options=[("grpc.ssl_target_name_override", server_name)]
    )


def token(
    cluster: Cluster, role: int, subject: str, center: str = "", agency: str = ""
) -> tuple[tuple[str, str]]:
    issued = cluster.issuer.issue(subject, role, center=center, agency=agency)
    return (("authorization", f"Bearer {issued}"),)


def peer_metadata(cluster: Cluster, center: str = CONSOLE) -> tuple[tuple[str, str]]:
    return token(cluster, common_pb2.ROLE_PEER_CENTER, center, center=center)
