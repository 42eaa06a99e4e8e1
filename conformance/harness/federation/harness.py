"""The federation harness of one run: the suite's national directory and its peer centers.

``DirectoryService`` (directory listener, ``federation_harness.listen``) serves the trust registry
(ListCenters with ``since_revision``), the directory keys and ResolveCenter answers signed with the
harness's Ed25519 key in the standard's format (§16.4). Every peer center has its own mutual-TLS
listener (the next ports) with a certificate from the harness CA pinned in its entry, and records
every FederationService call the center under test makes.

Cases own *slots*: a small square, unique per run, in which they raise their SOS. The directory
answers for a slot exactly as the case scripted (candidates, expiry, signature, an outage, a
default route), and peers answer forwards of emergencies located in it as scripted (accept, refuse,
UNAVAILABLE, garbage bytes, a wrong via or emergency). Locations in the center's own area (a square
around ``fixtures.service_area_location``) resolve to the center itself, everything else to
OUTSIDE_SERVICE_AREA with the center as default route, so the other profiles' cases stay local.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import common_pb2, directory_pb2, directory_pb2_grpc, emergency_pb2, federation_pb2
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ansim_sdk.errors import DOMAIN
from conformance.declaration import Declaration
from conformance.harness.federation.pki import (
    DIRECTORY_NAME,
    FederationPki,
    fingerprint,
)
from conformance.harness.federation.pki import (
    DOMAIN as DNS_DOMAIN,
)

SIGNING_CONTEXT = b"ansim.v1.ResolveCenterAnswer\x00"
FED = "ansim.v1.FederationService"
#: Half the side of the center's own square area and of a slot, in degrees.
HOME_HALF = 0.03
SLOT_HALF = 0.002
SLOT_STEP = 0.006

#: Peer roles → (label, registry tweaks). Ports: listen+1.. in this order; ``down`` never listens.
#: ``late`` is registered only when a case adds it (DIR-021).
PEERS = ("main", "second", "third", "impostor", "wrongname", "suspended", "expired", "down", "late")


def ts(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def now() -> datetime:
    return datetime.now(UTC)


def square(lat: float, lon: float, half: float) -> common_pb2.Area:
    ring = common_pb2.Ring(
        vertices=[
            common_pb2.Point(latitude=lat - half, longitude=lon - half),
            common_pb2.Point(latitude=lat - half, longitude=lon + half),
            common_pb2.Point(latitude=lat + half, longitude=lon + half),
            common_pb2.Point(latitude=lat + half, longitude=lon - half),
        ]
    )
    return common_pb2.Area(polygons=[ring])


def rich_error(
    code: grpc.StatusCode, reason: str, message: str, metadata: dict[str, str] | None = None
) -> grpc.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(domain=DOMAIN, reason=reason, metadata=metadata or {})
    )
    return rpc_status.to_status(status)


class Abort(Exception):
    def __init__(self, status: grpc.Status) -> None:
        super().__init__(status.details)
        self.status = status


def jwt_claims(metadata: dict[str, str]) -> dict[str, Any]:
    """The claims of the bearer token sent (unverified: the harness only looks)."""
    token = metadata.get("authorization", "").removeprefix("Bearer ").strip()
    try:
        body = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    except (IndexError, ValueError):
        return {}


@dataclass
class Call:
    """One call the center under test made to the harness."""

    at: float  # time.monotonic()
    server: str  # "directory" or the peer's center name
    method: str
    request: Any
    metadata: dict[str, str]
    answer: str = ""  # what the harness did: ok | UNAVAILABLE | garbage | …

    @property
    def token_center(self) -> str:
        return str(jwt_claims(self.metadata).get("center", ""))


@dataclass
class Slot:
    """A case's square: the directory answers and the peers act as the case scripts."""

    index: int
    lat: float
    lon: float
    #: Candidate peer names, best first (ResolveCenter answer).
    candidates: list[str] = field(default_factory=list)
    #: good | bad | unlisted | late | ended: how the answer is signed.
    signing: str = "good"
    #: expire_time − now of the answer (resolve_time = min(now, expire − 1 h)).
    expire_in: timedelta = timedelta(hours=24)
    #: Answer ResolveCenter with UNAVAILABLE.
    directory_down: bool = False
    #: Answer NOT_FOUND / OUTSIDE_SERVICE_AREA naming this default_center.
    default_center: str | None = None
    #: Per peer: the actions for successive ForwardEmergency attempts (the last one repeats):
    #: accept | unavailable | garbage | wrong_via | wrong_center | refuse | hang.
    actions: dict[str, list[str]] = field(default_factory=dict)
    #: Answers given (for routing_evidence comparisons).
    answers: list[directory_pb2.ResolveCenterResponse] = field(default_factory=list)

    @property
    def area(self) -> common_pb2.Area:
        return square(self.lat, self.lon, SLOT_HALF)

    def contains(self, lat: float, lon: float) -> bool:
        return abs(lat - self.lat) <= SLOT_HALF and abs(lon - self.lon) <= SLOT_HALF

    def point(self, north: float = 0.0, east: float = 0.0) -> tuple[float, float]:
        """A point of the slot, offset in degrees from its centre."""
        return self.lat + north, self.lon + east


@dataclass
class Peer:
    role: str
    name: str
    server_name: str
    port: int
    served_label: str
    pinned_label: str
    state: directory_pb2.CenterState.ValueType = directory_pb2.CENTER_STATE_ACTIVE
    pin_expire: datetime | None = None
    server: grpc.aio.Server | None = None


class FederationHarness:
    def __init__(self, declaration: Declaration, run_id: str) -> None:
        config = declaration.federation_harness
        if config is None:
            raise ValueError("the declaration has no federation_harness section")
        self.config = config
        self.declaration = declaration
        self.run_id = run_id
        self.host, port = config.listen.rsplit(":", 1)
        self.host = self.host.strip("[]")
        self.port = int(port)
        self.pki = FederationPki(config.pki_dir)
        fixtures = declaration.fixtures
        assert fixtures.center is not None
        self.center = fixtures.center
        spot = fixtures.service_area_location or fixtures.camera_location
        self.home = (spot.latitude, spot.longitude) if spot else (37.5729, 126.9794)
        rng = random.Random(run_id)
        # Slots lie south-west of the home area, at a run-specific place (no answer cached by an
        # earlier run applies to them).
        self._slot_base = (
            self.home[0] - 0.2 - rng.uniform(0, 0.25),
            self.home[1] - 0.2 - rng.uniform(0, 0.25),
        )
        self._slots: list[Slot] = []
        self.calls: list[Call] = []
        self.changed = asyncio.Event()
        # Revisions continue above any an earlier run issued, so a center that kept its registry
        # still loads this run's entries (it asks for revisions above the highest it holds).
        self.revision = int(time.time()) * 100
        self.entries: dict[str, directory_pb2.CenterEntry] = {}
        self.list_down = False
        self.keys = {kid: self.pki.ed25519(kid) for kid in ("harness-dir-1", "harness-dir-ended")}
        self.keys["unlisted"] = ed25519.Ed25519PrivateKey.generate()  # never published
        self.late_key_id = f"harness-late-{uuid.uuid4().hex[:8]}"
        self.keys[self.late_key_id] = ed25519.Ed25519PrivateKey.generate()
        self.late_published = False
        main = fixtures.peer_center or "centers/harness-peer"
        self.peers: dict[str, Peer] = {}
        for offset, role in enumerate(PEERS, start=1):
            name = main if role == "main" else f"centers/harness-{role}"
            if role == "late":
                name = f"centers/harness-late-{run_id[-6:].lower()}"
            server_name = f"{role}.{DNS_DOMAIN}"
            served = f"peer-{role}"
            pinned = "peer-impostor-pinned" if role == "impostor" else served
            peer = Peer(role, name, server_name, self.port + offset, served, pinned)
            if role == "suspended":
                peer.state = directory_pb2.CENTER_STATE_SUSPENDED
            if role == "expired":
                peer.pin_expire = now() - timedelta(days=1)
            self.peers[role] = peer
        self.ready = False
        #: request_id of an accepted forward or handoff → the emergency name the peer answered.
        self.accepted: dict[str, str] = {}
        #: MirrorStatus bookkeeping per handling emergency: highest applied sequence.
        self.mirror_applied: dict[str, int] = {}
        #: Home emergencies whose first MirrorStatus the harness answers "nothing applied" (FED-023).
        self.mirror_hold_first: set[str] = set()
        self._mirror_held: set[str] = set()
        self.ready_after_s = 0.0
        self._directory: grpc.aio.Server | None = None
        self._lock = asyncio.Lock()
        self._emergency_ids = iter(range(1, 1_000_000))

    # -- set-up ------------------------------------------------------------------------------

    def peer(self, role: str) -> str:
        return self.peers[role].name

    def _entry(self, peer: Peer) -> directory_pb2.CenterEntry:
        names = [f"elsewhere.{DNS_DOMAIN}"] if peer.role == "wrongname" else [peer.server_name]
        pin_cert, _ = self.pki.leaf(peer.pinned_label, names, local=peer.role != "wrongname")
        pins = [directory_pb2.CertificatePin(sha256_fingerprint=fingerprint(pin_cert))]
        if peer.role == "main":
            client = self.declaration.tls.client_certs.get("PEER_CENTER")
            if client is not None:
                pins.append(
                    directory_pb2.CertificatePin(
                        sha256_fingerprint=fingerprint(client.cert_file.read_bytes())
                    )
                )
        if peer.pin_expire is not None:
            for pin in pins:
                pin.expire_time.CopyFrom(ts(peer.pin_expire))
        entry = directory_pb2.CenterEntry(
            name=peer.name,
            display_name_ko=f"하네스 {peer.role} 센터",
            display_name_en=f"Harness {peer.role} center",
            service_area=square(self._slot_base[0], self._slot_base[1], 0.5),
            endpoints=[
                directory_pb2.CenterEndpoint(
                    target=f"{self._host_for_entry()}:{peer.port}", tls_server_name=peer.server_name
                )
            ],
            certificates=pins,
            supported_profiles=["center-core", "federation"],
            spec_version="1.0.0",
            contacts=[
                directory_pb2.CenterContact(
                    kind=directory_pb2.CENTER_CONTACT_KIND_OPERATIONS,
                    display_name=f"harness {peer.role} desk",
                    phone="02-0000-0000",
                )
            ],
            agencies=[
                directory_pb2.ServingAgency(
                    agency="agencies/harness-112", kind=common_pb2.AGENCY_KIND_POLICE_112
                ),
                directory_pb2.ServingAgency(
                    agency="agencies/harness-119", kind=common_pb2.AGENCY_KIND_FIRE_119
                ),
            ],
            state=peer.state,
        )
        return entry

    def _host_for_entry(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _own_entry(self) -> directory_pb2.CenterEntry:
        client_cert, _, _ = self.pki.center_identity()
        pins = [fingerprint(client_cert.read_bytes())]
        if self.config.center_certificate is not None:
            pins.append(fingerprint(self.config.center_certificate.read_bytes()))
        target = self.declaration.tls.mtls_target or self.declaration.target
        agencies = [
            directory_pb2.ServingAgency(agency=name, kind=common_pb2.AgencyKind.Value("AGENCY_KIND_" + kind))
            for kind, name in self.declaration.fixtures.agencies.items()
        ]
        return directory_pb2.CenterEntry(
            name=self.center,
            display_name_ko="시험 대상 센터",
            display_name_en="Center under test",
            service_area=square(*self.home, HOME_HALF),
            endpoints=[directory_pb2.CenterEndpoint(target=target, tls_server_name="localhost")],
            certificates=[directory_pb2.CertificatePin(sha256_fingerprint=p) for p in dict.fromkeys(pins)],
            supported_profiles=["center-core", "federation"],
            spec_version="1.0.0",
            agencies=agencies,
            state=directory_pb2.CENTER_STATE_ACTIVE,
        )

    def put_entry(self, entry: directory_pb2.CenterEntry) -> int:
        """Store an entry with the next revision (what an UpdateCenter at the directory would do)."""
        self.revision += 1
        entry.revision = self.revision
        entry.etag = f"r{self.revision}"
        entry.update_time.CopyFrom(ts(now()))
        self.entries[entry.name] = entry
        return self.revision

    async def start(self) -> None:
        self.put_entry(self._own_entry())
        for peer in self.peers.values():
            if peer.role != "late":
                self.put_entry(self._entry(peer))
        client_ca = self.pki.ca_file.read_bytes()
        if self.config.center_client_ca is not None:
            client_ca += b"\n" + self.config.center_client_ca.read_bytes()
        cert, key = self.pki.leaf("directory", [DIRECTORY_NAME])
        self._directory = grpc.aio.server()
        directory_pb2_grpc.add_DirectoryServiceServicer_to_server(_Directory(self), self._directory)  # type: ignore[abstract]
        self._directory.add_secure_port(
            f"{self._host_for_entry()}:{self.port}",
            grpc.ssl_server_credentials(
                [(key, cert)], root_certificates=client_ca, require_client_auth=False
            ),
        )
        await self._directory.start()
        for peer in self.peers.values():
            if peer.role == "down":
                continue
            served = [peer.server_name] if peer.role != "wrongname" else [f"elsewhere.{DNS_DOMAIN}"]
            # wrongname: a pinned certificate valid only for another name (no IP / localhost either)
            cert, key = self.pki.leaf(peer.served_label, served, local=peer.role != "wrongname")
            server = grpc.aio.server()
            server.add_generic_rpc_handlers((_peer_handler(self, peer),))
            server.add_secure_port(
                f"{self._host_for_entry()}:{peer.port}",
                grpc.ssl_server_credentials(
                    [(key, cert)], root_certificates=client_ca, require_client_auth=True
                ),
            )
            await server.start()
            peer.server = server

    async def stop(self) -> None:
        servers = [p.server for p in self.peers.values() if p.server is not None]
        if self._directory is not None:
            servers.append(self._directory)
        await asyncio.gather(*(s.stop(0.2) for s in servers), return_exceptions=True)

    # -- slots -------------------------------------------------------------------------------

    def slot(self, **script: Any) -> Slot:
        index = len(self._slots)
        row, col = divmod(index, 20)
        slot = Slot(
            index, self._slot_base[0] - row * SLOT_STEP, self._slot_base[1] - col * SLOT_STEP, **script
        )
        self._slots.append(slot)
        return slot

    def slot_of(self, lat: float, lon: float) -> Slot | None:
        return next((s for s in self._slots if s.contains(lat, lon)), None)

    # -- recording ---------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        self.calls.append(call)
        self.changed.set()

    def calls_where(self, predicate: Callable[[Call], bool]) -> list[Call]:
        return [c for c in self.calls if predicate(c)]

    async def wait_for(
        self, predicate: Callable[[Call], bool], timeout_s: float, count: int = 1
    ) -> list[Call]:
        """The matching calls once there are ``count`` of them, or what there is after the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.calls_where(predicate)
            left = deadline - time.monotonic()
            if len(found) >= count or left <= 0:
                return found
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))

    def forwards(self, slot: Slot, peer: str | None = None) -> list[Call]:
        def hit(c: Call) -> bool:
            if c.method not in ("ForwardEmergency", "HandoffEmergency") or (peer and c.server != peer):
                return False
            loc = c.request.emergency.location
            return slot.contains(loc.latitude, loc.longitude)

        return self.calls_where(hit)

    def mirrors(self, handling: str) -> list[federation_pb2.MirrorEvent]:
        """Every mirror event received for a handling emergency, in arrival order (resends too)."""
        return [
            e
            for c in self.calls
            if c.method == "MirrorStatus" and c.request.handling_emergency == handling
            for e in c.request.events
        ]

    def resolves(self, slot: Slot) -> list[Call]:
        return self.calls_where(
            lambda c: (
                c.method == "ResolveCenter"
                and slot.contains(c.request.location.latitude, c.request.location.longitude)
            )
        )

    # -- directory answers -------------------------------------------------------------------

    def candidate(self, name: str) -> directory_pb2.ResolveCandidate:
        entry = self.entries[name]
        return directory_pb2.ResolveCandidate(
            center=name,
            match=directory_pb2.CANDIDATE_MATCH_CONTAINS,
            overlap_percent=100,
            endpoints=entry.endpoints,
            certificates=entry.certificates,
            agencies=entry.agencies,
            display_name_ko=entry.display_name_ko,
            revision=entry.revision,
        )

    def signed(
        self,
        request: directory_pb2.ResolveCenterRequest,
        candidates: list[str],
        boundary: common_pb2.Area,
        expire_in: timedelta = timedelta(hours=24),
        signing: str = "good",
    ) -> directory_pb2.ResolveCenterResponse:
        moment = now()
        expire = moment + expire_in
        resolve = min(moment, expire - timedelta(hours=1))
        answer = directory_pb2.ResolveCenterAnswer(
            candidates=[self.candidate(c) for c in candidates],
            location=request.location,
            service=request.service or "sos",
            resolve_time=ts(resolve),
            expire_time=ts(expire),
            service_boundary=boundary,
            directory_revision=self.revision,
        )
        data = answer.SerializeToString()
        key_id = {"unlisted": "unlisted", "late": self.late_key_id, "ended": "harness-dir-ended"}.get(
            signing, "harness-dir-1"
        )
        signature = self.keys[key_id].sign(SIGNING_CONTEXT + data)
        if signing == "bad":
            signature = bytes([signature[0] ^ 0xFF]) + signature[1:]
        if signing == "late":
            self.late_published = True  # listed from now on: a refetch of the keys finds it
        return directory_pb2.ResolveCenterResponse(
            answer=data,
            signature=directory_pb2.DirectorySignature(
                key_id="harness-dir-unknown" if signing == "unlisted" else key_id,
                algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519,
                signature=signature,
            ),
        )

    def directory_keys(self) -> directory_pb2.DirectoryKeys:
        moment = now()

        def key(kid: str, not_before: datetime, not_after: datetime) -> directory_pb2.DirectoryKey:
            public = self.keys[kid].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            return directory_pb2.DirectoryKey(
                key_id=kid,
                algorithm=directory_pb2.SIGNATURE_ALGORITHM_ED25519,
                public_key=public,
                not_before=ts(not_before),
                not_after=ts(not_after),
            )

        keys = [
            key("harness-dir-1", moment - timedelta(days=200), moment + timedelta(days=30)),
            key("harness-dir-ended", moment - timedelta(days=30), moment - timedelta(days=3)),
        ]
        if self.late_published:
            keys.append(key(self.late_key_id, moment - timedelta(days=2), moment + timedelta(days=30)))
        return directory_pb2.DirectoryKeys(keys=keys)

    def next_emergency(self, peer: str) -> str:
        return f"{peer}/emergencies/h{self.run_id[-6:].lower()}-{next(self._emergency_ids)}"


class _Directory(directory_pb2_grpc.DirectoryServiceServicer):
    """The harness directory: the read side only (CreateCenter / UpdateCenter stay UNIMPLEMENTED)."""

    def __init__(self, harness: FederationHarness) -> None:
        self.h = harness

    def _record(self, method: str, request: Any, context: Any, answer: str = "ok") -> Call:
        call = Call(
            time.monotonic(), "directory", method, request, dict(context.invocation_metadata()), answer
        )
        self.h.record(call)
        return call

    async def GetDirectoryKeys(self, request: Any, context: Any) -> directory_pb2.DirectoryKeys:
        self._record("GetDirectoryKeys", request, context)
        return self.h.directory_keys()

    async def ListCenters(self, request: directory_pb2.ListCentersRequest, context: Any) -> Any:
        call = self._record("ListCenters", request, context)
        if self.h.list_down:
            call.answer = "UNAVAILABLE"
            await context.abort_with_status(
                rich_error(grpc.StatusCode.UNAVAILABLE, "SERVER_UNAVAILABLE", "directory down (harness)")
            )
        after = int(request.page_token) if request.page_token.isdigit() else int(request.since_revision)
        size = request.page_size or 100
        found = sorted((e for e in self.h.entries.values() if e.revision > after), key=lambda e: e.revision)
        page = found[:size]
        more = len(found) > size
        return directory_pb2.ListCentersResponse(
            centers=page,
            next_page_token=str(page[-1].revision) if more else "",
            directory_revision=self.h.revision,
        )

    async def GetCenter(self, request: directory_pb2.GetCenterRequest, context: Any) -> Any:
        self._record("GetCenter", request, context)
        entry = self.h.entries.get(request.name)
        if entry is None:
            await context.abort_with_status(
                rich_error(grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND", "no such center")
            )
        return entry

    async def ResolveCenter(self, request: directory_pb2.ResolveCenterRequest, context: Any) -> Any:
        call = self._record("ResolveCenter", request, context)
        lat, lon = request.location.latitude, request.location.longitude
        slot = self.h.slot_of(lat, lon)
        if slot is None:
            home = self.h.home
            if abs(lat - home[0]) <= HOME_HALF and abs(lon - home[1]) <= HOME_HALF:
                return self.h.signed(request, [self.h.center], square(*home, HOME_HALF))
            call.answer = "OUTSIDE_SERVICE_AREA"
            await context.abort_with_status(
                rich_error(
                    grpc.StatusCode.NOT_FOUND,
                    "OUTSIDE_SERVICE_AREA",
                    "outside every registered area (harness)",
                    {"default_center": self.h.center, "distance_m": "1000"},
                )
            )
        assert slot is not None
        if slot.directory_down:
            call.answer = "UNAVAILABLE"
            await context.abort_with_status(
                rich_error(grpc.StatusCode.UNAVAILABLE, "SERVER_UNAVAILABLE", "directory down (harness)")
            )
        if slot.default_center is not None:
            call.answer = "OUTSIDE_SERVICE_AREA"
            await context.abort_with_status(
                rich_error(
                    grpc.StatusCode.NOT_FOUND,
                    "OUTSIDE_SERVICE_AREA",
                    "outside every registered area (harness)",
                    {"default_center": slot.default_center, "distance_m": "420"},
                )
            )
        response = self.h.signed(request, slot.candidates, slot.area, slot.expire_in, slot.signing)
        call.answer = f"answer signed {slot.signing}"
        slot.answers.append(response)
        return response


def _peer_handler(h: FederationHarness, peer: Peer) -> grpc.GenericRpcHandler:  # type: ignore[type-arg]
    def unary(method: str, request_type: Any) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        async def handle(request: Any, context: Any) -> bytes:
            call = Call(time.monotonic(), peer.name, method, request, dict(context.invocation_metadata()))
            h.record(call)
            try:
                reply = await _peer_answer(h, peer, method, request, call)
            except Abort as abort:
                await context.abort_with_status(abort.status)
                raise  # unreachable: abort raises
            return reply

        return grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=request_type.FromString, response_serializer=lambda b: b
        )

    handlers = {
        "ForwardEmergency": unary("ForwardEmergency", federation_pb2.ForwardEmergencyRequest),
        "HandoffEmergency": unary("HandoffEmergency", federation_pb2.HandoffEmergencyRequest),
        "UpdateForwardedLocation": unary(
            "UpdateForwardedLocation", federation_pb2.UpdateForwardedLocationRequest
        ),
        "CancelForwardedEmergency": unary(
            "CancelForwardedEmergency", federation_pb2.CancelForwardedEmergencyRequest
        ),
        "MirrorStatus": unary("MirrorStatus", federation_pb2.MirrorStatusRequest),
    }
    return grpc.method_handlers_generic_handler(FED, handlers)


async def _peer_answer(h: FederationHarness, peer: Peer, method: str, request: Any, call: Call) -> bytes:
    if method in ("ForwardEmergency", "HandoffEmergency"):
        loc = request.emergency.location
        slot = h.slot_of(loc.latitude, loc.longitude)
        actions = (slot.actions.get(peer.name) if slot else None) or ["accept"]
        attempt = len([c for c in h.forwards(slot, peer.name)]) if slot else 1
        action = actions[min(attempt - 1, len(actions) - 1)]
        call.answer = action
        if action == "unavailable":
            raise Abort(rich_error(grpc.StatusCode.UNAVAILABLE, "SERVER_UNAVAILABLE", "peer down (harness)"))
        if action == "refuse":
            raise Abort(
                rich_error(grpc.StatusCode.PERMISSION_DENIED, "PEER_NOT_TRUSTED", "refused (harness)")
            )
        if action == "hang":
            await asyncio.sleep(3.0)
            raise Abort(rich_error(grpc.StatusCode.UNAVAILABLE, "SERVER_UNAVAILABLE", "too late (harness)"))
        if action == "garbage":
            return b"\xff\xff\xff\x0f not a protobuf message"
        via = [*request.via, peer.name]
        emergency = h.next_emergency(peer.name)
        if action == "wrong_via":
            via = ["centers/harness-nobody", peer.name]
        if action == "wrong_center":
            emergency = f"centers/harness-nobody/emergencies/x{uuid.uuid4().hex[:8]}"
        if action == "accept":
            h.accepted[request.request_id] = emergency
        if method == "HandoffEmergency":
            return federation_pb2.HandoffEmergencyResponse(
                emergency=emergency, via=via, accept_time=ts(now())
            ).SerializeToString()
        return federation_pb2.ForwardEmergencyResponse(
            emergency=emergency, via=via, accept_time=ts(now()), state=emergency_pb2.EMERGENCY_STATE_RAISED
        ).SerializeToString()
    if method == "UpdateForwardedLocation":
        latest = max((loc.fix_time.ToDatetime(tzinfo=UTC) for loc in request.locations), default=now())
        return federation_pb2.UpdateForwardedLocationResponse(current_fix_time=ts(latest)).SerializeToString()
    if method == "CancelForwardedEmergency":
        return federation_pb2.CancelForwardedEmergencyResponse(
            state=emergency_pb2.EMERGENCY_STATE_CANCELLED
        ).SerializeToString()
    applied = h.mirror_applied.get(request.handling_emergency, 0)
    if request.home_emergency in h.mirror_hold_first and request.home_emergency not in h._mirror_held:
        h._mirror_held.add(request.home_emergency)
        call.answer = f"held (last_applied_sequence {applied})"
    else:
        for event in sorted(request.events, key=lambda e: e.sequence):
            if event.sequence == applied + 1:
                applied += 1
        h.mirror_applied[request.handling_emergency] = applied
        call.answer = f"last_applied_sequence {applied}"
    return federation_pb2.MirrorStatusResponse(last_applied_sequence=applied).SerializeToString()
