"""``ansim demo``: start the federation, register it, play the scenarios, print timeline and summary.

Scenarios run against real processes over real gRPC/mTLS. The *federation drill* scenarios let the
console play the home center of a visiting app user (``centers/demo-console``, registered in the
directory with its own certificate and a mirror receiver): it forwards, relays fixes across the
Seoul–Anyang border and receives the handling centers' mirrors, while the centers do the rest
themselves (directory resolution, pin checks, acceptance, dedup, loop refusal, handoff, grant
revocation, mirroring). Scenarios that need a service a center does not serve are reported as
skipped and only count against the exit code when they were expected.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import (
    common_pb2,
    directory_pb2,
    directory_pb2_grpc,
    emergency_pb2,
    federation_pb2,
    federation_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from ansim_sdk.errors import parse_rpc_error
from reference_server.demo.cluster import Cluster, Process
from reference_server.demo.console import (
    CONSOLE,
    CONSOLE_ID,
    MirrorReceiver,
    Timeline,
    peer_metadata,
    start_receiver,
    tls_channel,
    token,
)
from reference_server.demo.entries import CENTERS, center_entry, entry
from reference_server.domain.directory.geometry import geometry_area, metric_circle
from reference_server.domain.directory.signing import verify_answer
from reference_server.domain.federation.forwarder import run_schedule

SEOKSU = (37.4348, 126.9022)
ANYANG_SOS = (37.4015, 126.9227)
JONGNO = (37.5729, 126.9794)
HAEUNDAE = (35.1631, 129.1636)
AT_SEA = (35.1000, 129.2300)
#: A walk from 안양 석수동 across the border into 서울 금천구 (§17.6).
WALK = (
    (37.4360, 126.9015, 25.0),
    (37.4365, 126.9018, 25.0),
    (37.4388, 126.9000, 20.0),
    (37.4396, 126.9012, 20.0),
)


@dataclass
class Result:
    name: str
    status: str  # passed | failed | skipped
    detail: str = ""
    expected: bool = True


@dataclass
class Demo:
    cluster: Cluster
    timeline: Timeline = field(default_factory=Timeline)
    results: list[Result] = field(default_factory=list)
    directory: Process | None = None
    centers: dict[str, Process] = field(default_factory=dict)
    receiver: MirrorReceiver | None = None
    keys: list[directory_pb2.DirectoryKey] = field(default_factory=list)
    incident_seq: int = 0

    # -- helpers ----------------------------------------------------------------------------

    def loc(self, lat: float, lon: float, radius: float, at: datetime | None = None) -> common_pb2.Location:
        location = common_pb2.Location(
            latitude=lat, longitude=lon, radius_m=radius, method=common_pb2.POSITIONING_METHOD_GNSS
        )
        location.fix_time.FromDatetime(at or datetime.now(UTC))
        return location

    def directory_stub(self) -> Any:
        assert self.directory is not None
        server_name = self.cluster.certs_for("directory").server_name
        return directory_pb2_grpc.DirectoryServiceStub(
            tls_channel(self.cluster.pki.ca_cert, self.directory.address, server_name)
        )

    def peer_stub(self, center_id: str, *, cert_role: str | None = None) -> Any:
        process = self.centers[center_id]
        certs = self.cluster.certs_for(CONSOLE_ID)
        cert, key = certs.client_cert, certs.client_key
        if cert_role is not None:  # a certificate of the same CA that no directory entry lists
            cert, key = self.cluster.pki.client_cert(cert_role), self.cluster.pki.client_key(cert_role)
        channel = tls_channel(
            self.cluster.pki.ca_cert,
            process.mtls_address,
            self.cluster.certs_for(center_id).server_name,
            cert,
            key,
        )
        return federation_pb2_grpc.FederationServiceStub(channel)

    def admin(self) -> tuple[tuple[str, str]]:
        return token(self.cluster, common_pb2.ROLE_DIRECTORY_ADMIN, "admins/demo")

    def forwarded(self, lat: float, lon: float, radius: float) -> federation_pb2.ForwardedEmergency:
        self.incident_seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        incident = f"{stamp}-D-{uuid.uuid4().hex[:6]}{self.incident_seq:03d}"
        emergency = federation_pb2.ForwardedEmergency(
            incident_id=incident,
            home_emergency=f"{CONSOLE}/emergencies/e{uuid.uuid4().hex[:8]}",
            kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
            mode=common_pb2.MODE_EXERCISE,
            location=self.loc(lat, lon, radius),
        )
        emergency.raise_time.FromDatetime(datetime.now(UTC))
        return emergency

    async def served(self, center_id: str, service: str) -> bool:
        process = self.centers.get(center_id)
        if process is None or not process.alive:
            return False
        channel = tls_channel(
            self.cluster.pki.ca_cert, process.address, self.cluster.certs_for(center_id).server_name
        )
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.aio.AioRpcError:
            return False
        finally:
            await channel.close(None)

    async def scenario(
        self, name: str, body: Callable[[], Awaitable[str]], *, needs: tuple[str, str] | None = None
    ) -> None:
        if needs is not None and not await self.served(*needs):
            self.results.append(
                Result(name, "skipped", f"service not available ({needs[1]} at {needs[0]})", expected=False)
            )
            self.timeline.add("-", "demo", f"{name}: skipped (service not available)")
            return
        try:
            detail = await asyncio.wait_for(body(), 25)
            self.results.append(Result(name, "passed", detail))
        except Unavailable as missing:
            self.results.append(Result(name, "skipped", f"service not available: {missing}", expected=False))
            self.timeline.add("-", "demo", f"{name}: skipped (service not available)")
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            if isinstance(error, grpc.aio.AioRpcError):
                message = f"{error.code().name} {parse_rpc_error(error).reason}: {error.details()}"
            self.results.append(Result(name, "failed", message))
            self.timeline.add("-", "demo", f"{name}: FAILED — {message}", ok=False)

    # -- start-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        began = time.monotonic()
        self.directory = self.cluster.launch(
            "directory", self.cluster.config("directory", "국가 안심 디렉터리", role="directory")
        )
        await self.directory.wait_ready()
        self.timeline.add(
            "directory", "ops", f"directory up at {self.directory.address}", (time.monotonic() - began) * 1000
        )
        for center in CENTERS:
            config = self.cluster.config(
                center.center_id, center.display_ko, directory=self.directory.mtls_address
            )
            self.centers[center.center_id] = self.cluster.launch(center.center_id, config)
        await asyncio.gather(*(p.wait_ready() for p in self.centers.values()))
        self.timeline.add(
            "-",
            "ops",
            f"{len(self.centers)} centers up (separate processes)",
            (time.monotonic() - began) * 1000,
        )
        stub = self.directory_stub()
        for center in CENTERS:
            process = self.centers[center.center_id]
            certs = self.cluster.certs_for(center.center_id)
            new = center_entry(center, process.mtls_address, certs.server_name, certs.fingerprints())
            await stub.CreateCenter(
                directory_pb2.CreateCenterRequest(center=new, request_id=str(uuid.uuid4())),
                metadata=self.admin(),
            )
        server, self.receiver, address = await start_receiver(
            self.cluster, self.cluster.certs_for(CONSOLE_ID), self.timeline
        )
        self._server = server
        certs = self.cluster.certs_for(CONSOLE_ID)
        console_entry = entry(
            CONSOLE,
            "데모 콘솔 (방문자 앱의 홈 센터)",
            "Demo console (home center of a visiting app)",
            geometry_area(metric_circle(33.0, 124.5, 100.0)),
            address,
            certs.server_name,
            certs.fingerprints(),
            municipalities_=[common_pb2.AdministrativeCodes(statistics_code="11010")],
            police="seoul-112",
            fire="seoul-119",
            profiles=("federation",),
        )
        await stub.CreateCenter(
            directory_pb2.CreateCenterRequest(center=console_entry, request_id=str(uuid.uuid4())),
            metadata=self.admin(),
        )
        self.keys = list(
            (await stub.GetDirectoryKeys(directory_pb2.GetDirectoryKeysRequest(), metadata=self.admin())).keys
        )
        self.timeline.add(
            "directory",
            "admin",
            f"registered {len(CENTERS) + 1} centers with boundaries and certificate pins",
        )
        await asyncio.sleep(1.6)  # one registry reload (registry_reload: 1 s)

    async def stop(self) -> None:
        if getattr(self, "_server", None) is not None:
            await self._server.stop(None)
        self.cluster.stop_all()

    # -- scenarios --------------------------------------------------------------------------

    async def routing(self) -> str:
        stub = self.directory_stub()
        checks = [
            ("종로 (home)", JONGNO, 20.0, ["centers/seoul-jongno"]),
            ("석수역 border r=150", SEOKSU, 150.0, ["centers/anyang", "centers/seoul-geumcheon"]),
            ("해운대", HAEUNDAE, 30.0, ["centers/busan-haeundae"]),
        ]
        for label, (lat, lon), radius, want in checks:
            began = time.monotonic()
            response = await stub.ResolveCenter(
                directory_pb2.ResolveCenterRequest(location=self.loc(lat, lon, radius), service="sos"),
                metadata=self.admin(),
            )
            answer = verify_answer(response, self.keys)
            got = [c.center for c in answer.candidates]
            detail = ", ".join(
                f"{c.center.removeprefix('centers/')} ({match_name(c.match)} {c.overlap_percent}%)"
                for c in answer.candidates
            )
            self.timeline.add(
                "directory",
                "resolver",
                f"{label} → {detail}; signature verified",
                (time.monotonic() - began) * 1000,
                ok=got == want,
            )
            if got != want:
                raise AssertionError(f"{label}: expected {want}, got {got}")
        try:
            await stub.ResolveCenter(
                directory_pb2.ResolveCenterRequest(location=self.loc(*AT_SEA, 30.0), service="sos"),
                metadata=self.admin(),
            )
            raise AssertionError("a fix at sea resolved")
        except grpc.aio.AioRpcError as error:
            parsed = parse_rpc_error(error)
            self.timeline.add(
                "directory",
                "resolver",
                f"at sea → {parsed.reason}, default route {parsed.metadata.get('default_center')}"
                f" ({parsed.metadata.get('distance_m')} m)",
            )
            if (
                parsed.reason != "OUTSIDE_SERVICE_AREA"
                or parsed.metadata.get("default_center") != "centers/busan-haeundae"
            ):
                raise
        return "4 locations resolved and verified"

    async def forward(
        self,
        center_id: str,
        forwarded: federation_pb2.ForwardedEmergency,
        *,
        via: list[str] | None = None,
        home: str = CONSOLE,
        reason: int = federation_pb2.FORWARD_REASON_ROUTED,
    ) -> federation_pb2.ForwardEmergencyResponse:
        request = federation_pb2.ForwardEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=forwarded,
            home_center=home,
            via=via or [CONSOLE],
            reason=reason,  # type: ignore[arg-type]
        )
        stub = self.peer_stub(center_id)
        response: federation_pb2.ForwardEmergencyResponse = await stub.ForwardEmergency(
            request, metadata=peer_metadata(self.cluster), timeout=3
        )
        return response

    async def visitor(self) -> str:
        self.visit = self.forwarded(*ANYANG_SOS, 15.0)
        self.visit.location.fix_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=60))
        resolve = await self.directory_stub().ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=self.visit.location, service="sos"),
            metadata=self.admin(),
        )
        top = verify_answer(resolve, self.keys).candidates[0].center
        began = time.monotonic()
        request = federation_pb2.ForwardEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=self.visit,
            home_center=CONSOLE,
            via=[CONSOLE],
            reason=federation_pb2.FORWARD_REASON_ROUTED,
            routing_evidence=resolve,
        )
        response = await self.peer_stub(top.removeprefix("centers/")).ForwardEmergency(
            request, metadata=peer_metadata(self.cluster), timeout=3
        )
        self.timeline.add(
            top,
            CONSOLE,
            f"SOS of a Seoul visitor in 안양 forwarded (incident {self.visit.incident_id})"
            f" → {response.emergency}",
            (time.monotonic() - began) * 1000,
        )
        self.visit_handling = response.emergency
        await self.until(lambda: "started (ROUTED)" in self.kinds(response.emergency), "the 'started' mirror")
        return f"handled by {top}, via {list(response.via)}; mirrored back to the home center"

    def kinds(self, handling: str) -> list[str]:
        return self.receiver.kinds(handling) if self.receiver else []

    async def until(self, predicate: Callable[[], bool], what: str, timeout_s: float = 8.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not arrive within {timeout_s} s")
            await asyncio.sleep(0.1)

    async def duplicate(self) -> str:
        began = time.monotonic()
        response = await self.forward("anyang", self.visit, reason=federation_pb2.FORWARD_REASON_FALLBACK)
        self.timeline.add(
            "centers/anyang",
            CONSOLE,
            f"same incident forwarded again (new request_id) → duplicate={response.duplicate}",
            (time.monotonic() - began) * 1000,
            ok=response.duplicate,
        )
        if not response.duplicate or response.emergency != self.visit_handling:
            raise AssertionError("the second forward was not suppressed as a duplicate")
        return "no second emergency, no second dispatch"

    async def loop(self) -> str:
        emergency = self.forwarded(*ANYANG_SOS, 15.0)
        emergency.home_emergency = f"centers/anyang/emergencies/e{uuid.uuid4().hex[:8]}"
        try:
            await self.forward("anyang", emergency, via=["centers/anyang", CONSOLE], home="centers/anyang")
        except grpc.aio.AioRpcError as error:
            reason = parse_rpc_error(error).reason
            self.timeline.add(
                "centers/anyang",
                CONSOLE,
                f"forward with anyang already on the via path → {reason}",
                ok=reason == "FORWARDING_LOOP",
            )
            if reason == "FORWARDING_LOOP":
                return "loop refused"
            raise
        raise AssertionError("a looping forward was accepted")

    async def forged(self) -> str:
        stub = self.peer_stub("anyang", cert_role="APP_USER")
        request = federation_pb2.ForwardEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=self.forwarded(*ANYANG_SOS, 15.0),
            home_center=CONSOLE,
            via=[CONSOLE],
            reason=federation_pb2.FORWARD_REASON_ROUTED,
        )
        try:
            await stub.ForwardEmergency(request, metadata=peer_metadata(self.cluster), timeout=3)
        except grpc.aio.AioRpcError as error:
            reason = parse_rpc_error(error).reason
            self.timeline.add(
                "centers/anyang",
                "impostor",
                f"unregistered certificate claiming {CONSOLE} → {reason}",
                ok=reason == "PEER_NOT_TRUSTED",
            )
            if reason == "PEER_NOT_TRUSTED":
                return "impostor refused"
            raise
        raise AssertionError("an unregistered certificate was accepted")

    async def handoff(self) -> str:
        stub = self.peer_stub("anyang")
        start = datetime.now(UTC) - timedelta(seconds=40)
        for index, (lat, lon, radius) in enumerate(WALK):
            fix = self.loc(lat, lon, radius, start + timedelta(seconds=12 * index))
            began = time.monotonic()
            await stub.UpdateForwardedLocation(
                federation_pb2.UpdateForwardedLocationRequest(
                    request_id=str(uuid.uuid4()),
                    emergency=self.visit_handling,
                    mode=self.visit.mode,
                    locations=[fix],
                ),
                metadata=peer_metadata(self.cluster),
                timeout=3,
            )
            self.timeline.add(
                "centers/anyang",
                CONSOLE,
                f"relayed fix {index + 1} ({lat:.4f}, {lon:.4f}) r={radius:.0f} m",
                (time.monotonic() - began) * 1000,
            )
        await self.until(
            lambda: any(k.startswith("state TRANSFERRED") for k in self.kinds(self.visit_handling)),
            "anyang's TRANSFERRED mirror",
        )
        moved = (
            next(
                e.state_change.transferred_to
                for e in self.receiver.events[self.visit_handling]
                if e.WhichOneof("event") == "state_change"
            )
            if self.receiver
            else ""
        )
        await self.until(
            lambda: "started (HANDOFF)" in self.kinds(moved), "the new center's 'started' mirror"
        )
        if not moved.startswith("centers/seoul-geumcheon/"):
            raise AssertionError(f"handed off to {moved}, not to seoul-geumcheon")
        return f"anyang → {moved}; the home center kept watching"

    async def peer_down(self) -> str:
        busan = self.centers["busan-haeundae"]
        busan.kill()
        self.timeline.add("centers/busan-haeundae", "ops", "process killed (SIGKILL) mid-scenario")
        emergency = self.forwarded(*HAEUNDAE, 20.0)
        request = federation_pb2.ForwardEmergencyRequest(
            request_id=str(uuid.uuid4()),
            emergency=emergency,
            home_center=CONSOLE,
            via=[CONSOLE],
            reason=federation_pb2.FORWARD_REASON_ROUTED,
        )

        async def send(center: str, deadline_s: float) -> federation_pb2.ForwardEmergencyResponse:
            stub = self.peer_stub(center.removeprefix("centers/"))
            reply: federation_pb2.ForwardEmergencyResponse = await stub.ForwardEmergency(
                request, metadata=peer_metadata(self.cluster), timeout=deadline_s
            )
            return reply

        began = time.monotonic()
        outcome = await run_schedule(["centers/busan-haeundae"], send)
        for attempt in outcome.attempts:
            self.timeline.add(
                "centers/busan-haeundae",
                CONSOLE,
                f"forward attempt: {attempt.outcome} ({attempt.detail})",
                attempt.seconds * 1000,
                ok=False,
            )
        if outcome.result == "accepted":
            raise AssertionError("a dead center accepted a forward")
        elapsed = time.monotonic() - began
        self.timeline.add(
            CONSOLE,
            CONSOLE,
            f"FALLBACK after {len(outcome.attempts)} attempts in {elapsed:.1f} s:"
            " handled at home, never dropped",
            ok=elapsed <= 5.2,
        )
        config = list(busan.popen.args)[-1]  # type: ignore[arg-type]
        restarted = self.cluster.launch("busan-haeundae", Path(str(config)))
        await restarted.wait_ready()
        self.centers["busan-haeundae"] = restarted
        self.timeline.add(
            "centers/busan-haeundae",
            "ops",
            f"restarted with the same store (new port {restarted.mtls_address})",
        )
        stub = self.directory_stub()
        current = await stub.GetCenter(
            directory_pb2.GetCenterRequest(name="centers/busan-haeundae"), metadata=self.admin()
        )
        current.endpoints[0].target = restarted.mtls_address
        from google.protobuf import field_mask_pb2

        await stub.UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=current,
                update_mask=field_mask_pb2.FieldMask(paths=["endpoints"]),
                request_id=str(uuid.uuid4()),
            ),
            metadata=self.admin(),
        )
        request.reason = federation_pb2.FORWARD_REASON_FALLBACK
        request.request_id = str(uuid.uuid4())
        first = await self.peer_stub("busan-haeundae").ForwardEmergency(
            request, metadata=peer_metadata(self.cluster), timeout=3
        )
        request.request_id = str(uuid.uuid4())
        again = await self.peer_stub("busan-haeundae").ForwardEmergency(
            request, metadata=peer_metadata(self.cluster), timeout=3
        )
        self.timeline.add(
            "centers/busan-haeundae",
            CONSOLE,
            f"recovery forward (FALLBACK) accepted → {first.emergency};"
            f" a repeat → duplicate={again.duplicate}",
            ok=again.duplicate,
        )
        if elapsed > 5.2 or not again.duplicate or again.emergency != first.emergency:
            raise AssertionError("fallback took longer than 5 s or the duplicate was not suppressed")
        return f"fallback after {elapsed:.1f} s; recovered and deduplicated"

    async def app_visitor(self) -> str:
        """A Seoul app user raises an SOS in 안양 at her home center; the home center must route it."""
        jongno = self.centers["seoul-jongno"]
        channel = tls_channel(
            self.cluster.pki.ca_cert, jongno.address, self.cluster.certs_for("seoul-jongno").server_name
        )
        from ansim.v1 import emergency_pb2_grpc

        stub: Any = emergency_pb2_grpc.EmergencyServiceStub(channel)
        user = token(self.cluster, common_pb2.ROLE_APP_USER, f"users/visitor-{uuid.uuid4().hex[:6]}")
        began = time.monotonic()
        created = await stub.RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent="centers/seoul-jongno",
                request_id=str(uuid.uuid4()),
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                mode=common_pb2.MODE_EXERCISE,
                location=self.loc(*ANYANG_SOS, 15.0),
            ),
            metadata=user,
            timeout=5,
        )
        self.timeline.add(
            "centers/seoul-jongno",
            "app",
            f"RaiseEmergency in 안양 at the home center → {created.name}",
            (time.monotonic() - began) * 1000,
        )
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            current = await stub.GetEmergency(
                emergency_pb2.GetEmergencyRequest(name=created.name), metadata=user, timeout=3
            )
            if current.handling_center == "centers/anyang":
                self.timeline.add(
                    "centers/seoul-jongno",
                    "app",
                    "watch: handled by 안양시 스마트도시통합센터",
                    (time.monotonic() - began) * 1000,
                )
                return "routed to anyang; the app watches at home"
            await asyncio.sleep(0.3)
        routed = [
            record
            for name, record in self.cluster.federation_logs()
            if name == "seoul-jongno" and record.get("incident") == created.incident_id
        ]
        if not routed:
            raise Unavailable(
                "EmergencyService at seoul-jongno does not hand RAISED emergencies to federation"
                " (ctx.domain.router.route is not called yet)"
            )
        raise AssertionError(
            f"routing ran ({[r.get('event') for r in routed]}) but the home emergency never showed"
            " centers/anyang as its handling center"
        )


class Unavailable(Exception):
    """A scenario's service exists but the part it needs is not available yet."""


async def play(root: Path) -> Demo:
    demo = Demo(Cluster.create(root))
    try:
        await demo.start()
        await demo.scenario("directory routing (signed answers, default route)", demo.routing)
        await demo.scenario(
            "SOS by a visitor: forwarded to the responsible center, mirrored home", demo.visitor
        )
        await demo.scenario("duplicate forward after recovery is suppressed", demo.duplicate)
        await demo.scenario("forwarding loop refused", demo.loop)
        await demo.scenario("forged / unregistered peer refused", demo.forged)
        await demo.scenario("handoff across the Seoul–Anyang border", demo.handoff)
        await demo.scenario("center killed mid-scenario: retries, fallback, recovery, dedup", demo.peer_down)
        await demo.scenario(
            "app SOS at home center routed to the visited city",
            demo.app_visitor,
            needs=("seoul-jongno", "ansim.v1.EmergencyService"),
        )
        for name, center, service in (
            ("child: school arrival and danger-zone entry", "seoul-jongno", "ansim.v1.ChildSafetyService"),
            ("emergency bell press", "seoul-jongno", "ansim.v1.TagEventService"),
            ("safe trip overdue", "seoul-jongno", "ansim.v1.SafeTripService"),
        ):
            available = await demo.served(center, service)
            detail = (
                "not scripted in this demo version" if available else f"service not available ({service})"
            )
            demo.results.append(Result(name, "skipped", detail, expected=False))
            demo.timeline.add("-", "demo", f"{name}: skipped ({detail})")
    finally:
        for name, record in demo.cluster.federation_logs():
            if (
                record.get("event") in ("forwarded", "handoff", "fallback", "registry")
                and record.get("event") != "registry"
            ):
                demo.timeline.add(
                    f"centers/{name}",
                    "federation",
                    " ".join(
                        str(x) for x in (record["event"], record.get("message"), record.get("peer", ""))
                    ).strip(),
                    record.get("latency_ms"),
                )
        await demo.stop()
    return demo


def report(demo: Demo, console: Console) -> int:
    demo.timeline.print(console)
    table = Table(title="Summary")
    for column in ("scenario", "result", "detail"):
        table.add_column(column)
    for result in demo.results:
        style = {"passed": "green", "failed": "red", "skipped": "yellow"}[result.status]
        table.add_row(result.name, result.status, result.detail, style=style)
    console.print(table)
    failed = [r for r in demo.results if r.status == "failed" or (r.status == "skipped" and r.expected)]
    return 1 if failed or not demo.results else 0


def match_name(match: int) -> str:
    return directory_pb2.CandidateMatch.Name(match).removeprefix("CANDIDATE_MATCH_")  # type: ignore[arg-type]
