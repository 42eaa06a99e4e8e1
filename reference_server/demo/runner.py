"""``ansim demo``: start the federation, register it, play the scenarios, print timeline and summary.

Scenarios run against real processes over real gRPC/mTLS. The *app-level* scenarios play a 종로
resident's app against her home center's real EmergencyService (raise, watch, StreamLocation) and
the agencies' DispatchService: an SOS at home, an SOS in 안양 forwarded to 안양 and dispatched there,
a handoff across the Seoul–Anyang border driven by her own fixes, and a center killed before her SOS
in 해운대 (fallback at home within 5 s, recovery forward once it is back). The *federation drill*
lets the console act as a registered peer (``centers/demo-console``) for what an app cannot cause:
a looping forward, an unregistered certificate, the same incident forwarded twice. Scenarios that
need a service a center does not serve are reported as skipped and only count against the exit
code when they were expected.
"""

from __future__ import annotations

import asyncio
import contextlib
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
            agencies = [
                {"name": f"agencies/{center.police}", "kind": "POLICE_112"},
                {"name": f"agencies/{center.fire}", "kind": "FIRE_119"},
            ]
            config = self.cluster.config(
                center.center_id, center.display_ko, directory=self.directory.mtls_address, agencies=agencies
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

    # -- the federation drill: the console as a (registered) peer --------------------------------

    async def duplicate(self) -> str:
        """The same incident forwarded twice with new request ids: one emergency (FED-009)."""
        forwarded = self.forwarded(*ANYANG_SOS, 15.0)
        first = await self.forward("anyang", forwarded)
        began = time.monotonic()
        again = await self.forward("anyang", forwarded, reason=federation_pb2.FORWARD_REASON_FALLBACK)
        self.timeline.add(
            "centers/anyang",
            CONSOLE,
            f"same incident forwarded again (new request_id) → duplicate={again.duplicate}",
            (time.monotonic() - began) * 1000,
            ok=again.duplicate,
        )
        if not again.duplicate or again.emergency != first.emergency:
            raise AssertionError("the second forward was not suppressed as a duplicate")
        return "no second emergency, no second dispatch"

    # -- app-level scenarios: the real EmergencyService of the centers ---------------------------

    def stub(self, center_id: str, service: str = "emergency") -> Any:
        from ansim.v1 import dispatch_pb2_grpc, emergency_pb2_grpc

        process = self.centers[center_id]
        channel = tls_channel(
            self.cluster.pki.ca_cert, process.address, self.cluster.certs_for(center_id).server_name
        )
        if service == "dispatch":
            return dispatch_pb2_grpc.DispatchServiceStub(channel)
        return emergency_pb2_grpc.EmergencyServiceStub(channel)

    def operator(self, center_id: str) -> tuple[tuple[str, str]]:
        return token(
            self.cluster,
            common_pb2.ROLE_CENTER_OPERATOR,
            f"operators/{center_id}",
            center=f"centers/{center_id}",
        )

    async def raise_sos(
        self, label: str, lat: float, lon: float, radius: float, *, fix_age_s: float = 0.0
    ) -> tuple[emergency_pb2.Emergency, tuple[tuple[str, str]], Watch, float]:
        """Her app raises at her home center (종로) and watches there."""
        user = token(self.cluster, common_pb2.ROLE_APP_USER, f"users/{label}-{uuid.uuid4().hex[:6]}")
        location = self.loc(lat, lon, radius, datetime.now(UTC) - timedelta(seconds=fix_age_s))
        began = time.monotonic()
        created: emergency_pb2.Emergency = await self.stub("seoul-jongno").RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent="centers/seoul-jongno",
                request_id=str(uuid.uuid4()),
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                mode=common_pb2.MODE_EXERCISE,
                location=location,
            ),
            metadata=user,
            timeout=5,
        )
        self.timeline.add(
            "centers/seoul-jongno",
            "app",
            f"RaiseEmergency ({label}, {lat:.4f}, {lon:.4f}) → {created.name}",
            (time.monotonic() - began) * 1000,
        )
        watch = Watch(self, created.name, user)
        watch.start()
        return created, user, watch, began

    async def staff_view(self, center_id: str, name: str) -> emergency_pb2.Emergency:
        found: emergency_pb2.Emergency = await self.stub(center_id).GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=name), metadata=self.operator(center_id), timeout=3
        )
        return found

    async def held_at(self, center_id: str, incident_id: str) -> list[emergency_pb2.Emergency]:
        reply = await self.stub(center_id).ListEmergencies(
            emergency_pb2.ListEmergenciesRequest(parent=f"centers/{center_id}", incident_id=incident_id),
            metadata=self.operator(center_id),
            timeout=3,
        )
        return list(reply.emergencies)

    async def eventually(self, probe: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 8.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            got = await probe()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {timeout_s} s")
            await asyncio.sleep(0.1)

    async def home_sos(self) -> str:
        """A 종로 resident in 종로: routed to herself, her own 112 dispatched."""
        created, _, watch, began = await self.raise_sos("resident", *JONGNO, 20.0)
        try:

            async def dispatched() -> emergency_pb2.Emergency | None:
                seen = await self.staff_view("seoul-jongno", created.name)
                return seen if seen.dispatched_agencies else None

            seen = await self.eventually(dispatched, "a dispatch at the home center", 5.0)
            elapsed = (time.monotonic() - began) * 1000
            agencies = [a.agency for a in seen.dispatched_agencies]
            self.timeline.add(
                "centers/seoul-jongno",
                "emergency",
                f"handled here (top candidate is itself): dispatched to {', '.join(agencies)}",
                elapsed,
                ok=agencies == ["agencies/seoul-112"],
            )
            if seen.handling_center != "centers/seoul-jongno" or agencies != ["agencies/seoul-112"]:
                raise AssertionError(f"handled by {seen.handling_center}, dispatched to {agencies}")
            # Every event carries the emergency as it is: a watch opened after the dispatch sees it
            # in its SNAPSHOT, one opened before sees DISPATCH_UPDATED.
            await watch.until(lambda e: bool(e.emergency.dispatched_agencies), "the dispatch")
            return f"handled at home, seoul-112 dispatched after {elapsed:.0f} ms"
        finally:
            watch.stop()

    async def app_visitor(self) -> str:
        """A 종로 resident in 안양: forwarded to 안양, its 112 dispatched, watched at home."""
        created, user, watch, began = await self.raise_sos("visitor", *ANYANG_SOS, 15.0, fix_age_s=60)
        self.visitor_sos, self.visitor_user, self.visitor_watch = created, user, watch
        changed = await watch.until(
            lambda e: watch.handling(e) == "centers/anyang", "HANDLING_CENTER_CHANGED"
        )
        self.timeline.add(
            "centers/seoul-jongno",
            "app",
            f"watch at home: HANDLING_CENTER_CHANGED → {shown(changed)}",
            (time.monotonic() - began) * 1000,
        )
        held = await self.eventually(
            lambda: self.held_at("anyang", created.incident_id), "the emergency at anyang", 5.0
        )
        anyang = held[0]

        async def dispatched() -> emergency_pb2.Emergency | None:
            seen = await self.staff_view("anyang", anyang.name)
            return seen if seen.dispatched_agencies else None

        seen = await self.eventually(dispatched, "anyang's dispatch", 5.0)
        self.visitor_handling = seen.name
        entry = seen.dispatched_agencies[0]
        self.timeline.add(
            "centers/anyang",
            "emergency",
            f"{seen.name} (incident {seen.incident_id}, home {seen.home_center}):"
            f" dispatched to {entry.agency}",
            (time.monotonic() - began) * 1000,
            ok=entry.agency == "agencies/gyeonggi-south-112",
        )
        if entry.agency != "agencies/gyeonggi-south-112":
            raise AssertionError(f"anyang dispatched to {entry.agency}")
        officer = token(
            self.cluster,
            common_pb2.ROLE_POLICE_OFFICER,
            "officers/gyeonggi-1",
            agency="agencies/gyeonggi-south-112",
        )
        from ansim.v1 import dispatch_pb2, dispatch_pb2_grpc

        officer_channel = tls_channel(  # officers present a client certificate (mutual TLS)
            self.cluster.pki.ca_cert,
            self.centers["anyang"].mtls_address,
            self.cluster.certs_for("anyang").server_name,
            self.cluster.pki.client_cert("POLICE_OFFICER"),
            self.cluster.pki.client_key("POLICE_OFFICER"),
        )
        await dispatch_pb2_grpc.DispatchServiceStub(officer_channel).AcknowledgeDispatch(
            dispatch_pb2.AcknowledgeDispatchRequest(
                name=entry.dispatch, request_id=str(uuid.uuid4()), unit_id="안양-순12"
            ),
            metadata=officer,
            timeout=3,
        )
        self.timeline.add(
            "centers/anyang", "gyeonggi-south-112", f"acknowledged {entry.dispatch} (unit 안양-순12)"
        )
        await watch.until(
            lambda e: (
                e.type == emergency_pb2.EMERGENCY_EVENT_TYPE_STATE_CHANGED
                and e.emergency.state == emergency_pb2.EMERGENCY_STATE_DISPATCHED
            ),
            "DISPATCHED mirrored home",
        )
        self.timeline.add("centers/seoul-jongno", "app", "watch at home: police acknowledged → DISPATCHED")
        own = await self.stub("seoul-jongno", "dispatch").ListDispatches(
            _list_dispatches("centers/seoul-jongno", created.name),
            metadata=self.operator("seoul-jongno"),
            timeout=3,
        )
        if own.dispatches:
            raise AssertionError("the home center dispatched a visitor's SOS itself (double dispatch)")
        return "forwarded to anyang, gyeonggi-south-112 dispatched and acknowledged; no dispatch at home"

    async def app_handoff(self) -> str:
        """Her app streams fixes at home while she walks from 안양 석수동 into 서울 금천구."""
        created, user, watch = self.visitor_sos, self.visitor_user, self.visitor_watch
        start = datetime.now(UTC) - timedelta(seconds=40)
        requests = [
            emergency_pb2.StreamLocationRequest(
                name=created.name,
                sequence=index + 1,
                location=self.loc(lat, lon, radius, start + timedelta(seconds=12 * index)),
            )
            for index, (lat, lon, radius) in enumerate(WALK)
        ]
        began = time.monotonic()

        async def feed() -> Any:
            for request in requests:
                yield request
                await asyncio.sleep(0.15)

        call = self.stub("seoul-jongno").StreamLocation(feed(), metadata=user, timeout=10)
        async for ack in call:
            fix = requests[ack.sequence - 1].location
            self.timeline.add(
                "centers/seoul-jongno",
                "app",
                f"StreamLocation fix {ack.sequence} ({fix.latitude:.4f}, {fix.longitude:.4f})"
                f" r={fix.radius_m:.0f} m"
                f" → {emergency_pb2.LocationAckStatus.Name(ack.status).removeprefix('LOCATION_ACK_STATUS_')}",
            )
        changed = await watch.until(
            lambda e: watch.handling(e) == "centers/seoul-geumcheon",
            "HANDLING_CENTER_CHANGED to geumcheon",
            12.0,
        )
        self.timeline.add(
            "centers/seoul-jongno",
            "app",
            f"watch at home: HANDLING_CENTER_CHANGED → {shown(changed)}",
            (time.monotonic() - began) * 1000,
        )

        async def transferred() -> emergency_pb2.Emergency | None:
            seen = await self.staff_view("anyang", self.visitor_handling)
            return seen if seen.state == emergency_pb2.EMERGENCY_STATE_TRANSFERRED else None

        old = await self.eventually(transferred, "anyang's TRANSFERRED", 5.0)
        from ansim.v1 import dispatch_pb2

        superseded = [
            d
            for d in (
                await self.stub("anyang", "dispatch").ListDispatches(
                    _list_dispatches("centers/anyang", old.name), metadata=self.operator("anyang"), timeout=3
                )
            ).dispatches
            if d.state == dispatch_pb2.DISPATCH_STATE_SUPERSEDED
        ]
        new = await self.eventually(
            lambda: self.held_at("seoul-geumcheon", created.incident_id), "the emergency at geumcheon", 5.0
        )
        self.timeline.add(
            "centers/anyang",
            "emergency",
            f"{old.name} TRANSFERRED; {len(superseded)} dispatch(es) SUPERSEDED;"
            f" geumcheon holds {new[0].name}",
            ok=bool(superseded),
        )
        if not superseded:
            raise AssertionError("anyang's dispatch was not superseded")
        return f"anyang → {new[0].name} by the app's own fixes; the app kept watching at home"

    async def app_peer_down(self) -> str:
        """해운대 is killed; an SOS in 해운대 falls back at home, then moves to the restarted 해운대."""
        busan = self.centers["busan-haeundae"]
        busan.kill()
        self.timeline.add("centers/busan-haeundae", "ops", "process killed (SIGKILL) mid-scenario")
        created, _, watch, began = await self.raise_sos("traveller", *HAEUNDAE, 20.0)
        try:

            async def fallen_back() -> emergency_pb2.Emergency | None:
                seen = await self.staff_view("seoul-jongno", created.name)
                return seen if seen.dispatched_agencies else None

            seen = await self.eventually(fallen_back, "a fallback dispatch at home", 5.5)
            elapsed = time.monotonic() - began
            self.timeline.add(
                "centers/seoul-jongno",
                "emergency",
                f"{seen.status_note}; dispatched to {seen.dispatched_agencies[0].agency}"
                f" after {elapsed:.1f} s",
                elapsed * 1000,
                ok=elapsed <= 5.0,
            )
            if elapsed > 5.0:
                raise AssertionError(f"the fallback took {elapsed:.1f} s")
            config = list(busan.popen.args)[-1]  # type: ignore[arg-type]
            restarted = self.cluster.launch("busan-haeundae", Path(str(config)))
            await restarted.wait_ready()
            self.centers["busan-haeundae"] = restarted
            await self.move_endpoint("busan-haeundae", restarted.mtls_address)
            self.timeline.add(
                "centers/busan-haeundae",
                "ops",
                f"restarted with the same store (new port {restarted.mtls_address})",
            )
            changed = await watch.until(
                lambda e: watch.handling(e) == "centers/busan-haeundae",
                "HANDLING_CENTER_CHANGED to busan",
                15.0,
            )
            self.timeline.add(
                "centers/seoul-jongno",
                "app",
                f"watch at home: HANDLING_CENTER_CHANGED → {shown(changed)}",
            )
            from ansim.v1 import dispatch_pb2

            own = await self.stub("seoul-jongno", "dispatch").ListDispatches(
                _list_dispatches("centers/seoul-jongno", created.name),
                metadata=self.operator("seoul-jongno"),
                timeout=3,
            )
            states = {
                dispatch_pb2.DispatchState.Name(d.state).removeprefix("DISPATCH_STATE_")
                for d in own.dispatches
            }
            held = await self.held_at("busan-haeundae", created.incident_id)
            self.timeline.add(
                "centers/busan-haeundae",
                "emergency",
                f"recovery forward (FALLBACK) accepted: {len(held)} emergency for the incident;"
                f" home dispatches {sorted(states)}",
                ok=len(held) == 1 and states == {"SUPERSEDED"},
            )
            if len(held) != 1 or states != {"SUPERSEDED"}:
                raise AssertionError(f"busan holds {len(held)}, home dispatches {states}")
            return (
                f"fallback after {elapsed:.1f} s at home; recovered to busan,"
                " home dispatch SUPERSEDED, one emergency"
            )
        finally:
            watch.stop()

    async def move_endpoint(self, center_id: str, target: str) -> None:
        from google.protobuf import field_mask_pb2

        stub = self.directory_stub()
        current = await stub.GetCenter(
            directory_pb2.GetCenterRequest(name=f"centers/{center_id}"), metadata=self.admin()
        )
        current.endpoints[0].target = target
        await stub.UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=current,
                update_mask=field_mask_pb2.FieldMask(paths=["endpoints"]),
                request_id=str(uuid.uuid4()),
            ),
            metadata=self.admin(),
        )


def shown(event: emergency_pb2.EmergencyEvent) -> str:
    if event.type == emergency_pb2.EMERGENCY_EVENT_TYPE_SNAPSHOT:
        return f"{event.emergency.handling_center} (in the watch's first snapshot)"
    return event.handling_change.center_display_name or event.handling_change.handling_center


def _list_dispatches(parent: str, emergency: str) -> Any:
    from ansim.v1 import dispatch_pb2

    return dispatch_pb2.ListDispatchesRequest(parent=parent, emergency=emergency)


class Watch:
    """The app's WatchEmergency at her home center, in the background."""

    def __init__(self, demo: Demo, name: str, user: tuple[tuple[str, str]]) -> None:
        self.demo, self.name, self.user = demo, name, user
        self.events: list[emergency_pb2.EmergencyEvent] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            call = self.demo.stub("seoul-jongno").WatchEmergency(
                emergency_pb2.WatchEmergencyRequest(name=self.name), metadata=self.user
            )
            async for event in call:
                self.events.append(event)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @staticmethod
    def handling(event: emergency_pb2.EmergencyEvent) -> str:
        """The handling center an event announces: a change, or the snapshot of a watch opened after it."""
        if event.type == emergency_pb2.EMERGENCY_EVENT_TYPE_SNAPSHOT:
            return event.emergency.handling_center
        if event.type != emergency_pb2.EMERGENCY_EVENT_TYPE_HANDLING_CENTER_CHANGED:
            return ""
        return event.handling_change.handling_center

    async def until(
        self, predicate: Callable[[emergency_pb2.EmergencyEvent], bool], what: str, timeout_s: float = 8.0
    ) -> emergency_pb2.EmergencyEvent:
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not reach the app's watch within {timeout_s} s")
            await asyncio.sleep(0.05)


class Unavailable(Exception):
    """A scenario's service exists but the part it needs is not available yet."""


async def play(root: Path) -> Demo:
    demo = Demo(Cluster.create(root))
    try:
        await demo.start()
        await demo.scenario("directory routing (signed answers, default route)", demo.routing)
        await demo.scenario("forwarding loop refused", demo.loop)
        await demo.scenario("forged / unregistered peer refused", demo.forged)
        await demo.scenario("duplicate forward of one incident is suppressed", demo.duplicate)
        await demo.scenario("app SOS at home: handled by the home center", demo.home_sos)
        await demo.scenario(
            "app SOS by a visitor: forwarded to the responsible center, watched at home", demo.app_visitor
        )
        await demo.scenario("handoff across the Seoul–Anyang border", demo.app_handoff)
        await demo.scenario(
            "center killed mid-scenario: fallback at home, recovery, one emergency", demo.app_peer_down
        )
        from reference_server.demo.resilience import play_targets  # kill -9 each process (issue #4)

        await play_targets(demo)
        from reference_server.demo import local_scenarios  # child safety, bell, safe trip (issue #4)

        await local_scenarios.play(demo)
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
