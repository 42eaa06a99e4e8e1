"""What the demo's local scenarios (child safety, emergency bell, safe trip) share: one center's
public services as its operator, guardians, gateways and apps call them over TLS, a reader
gateway's IngestTagEvents stream, and server streams read in the background."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc.aio
from ansim.v1 import (
    child_safety_pb2,
    child_safety_pb2_grpc,
    common_pb2,
    emergency_pb2,
    emergency_pb2_grpc,
    guardian_pb2,
    guardian_pb2_grpc,
    safe_trip_pb2,
    safe_trip_pb2_grpc,
)

from reference_server.demo.console import tls_channel, token

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

T = TypeVar("T")
Metadata = tuple[tuple[str, str]]

#: CreateWard/CreateTag/CreateReader/CreateZone per collection: (rpc, request class, field).
CREATE = {
    "wards": ("CreateWard", child_safety_pb2.CreateWardRequest, "ward"),
    "tags": ("CreateTag", child_safety_pb2.CreateTagRequest, "tag"),
    "readers": ("CreateReader", child_safety_pb2.CreateReaderRequest, "reader"),
    "zones": ("CreateZone", child_safety_pb2.CreateZoneRequest, "zone"),
}


def circle(lat: float, lon: float, radius_m: float) -> common_pb2.Area:
    area = common_pb2.Area()
    area.circles.add(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=radius_m)
    return area


def kind_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def change_name(item: guardian_pb2.StreamNotificationsResponse) -> str:
    return kind_name(guardian_pb2.NotificationChange, item.change, "NOTIFICATION_CHANGE_")


def level_name(level: int) -> str:
    return kind_name(guardian_pb2.EscalationLevel, level, "ESCALATION_LEVEL_")


def alert_name(kind: int) -> str:
    return kind_name(safe_trip_pb2.TripAlertKind, kind, "TRIP_ALERT_KIND_")


def state_name(state: int) -> str:
    return kind_name(safe_trip_pb2.SafeTripState, state, "SAFE_TRIP_STATE_")


def dispatched_to(emergency: emergency_pb2.Emergency) -> list[str]:
    """The agencies an emergency has been dispatched to."""
    return [a.agency for a in emergency.dispatched_agencies]


def require(condition: bool, message: str) -> None:
    """A scenario's check: what arrived is not what the spec requires."""
    if not condition:
        raise AssertionError(message)


def checked(demo: Demo, where: str, actor: str, what: str, began: float, *, ok: bool, failure: str) -> None:
    """A checked step of a scenario: its timeline line with the milliseconds since ``began`` (red
    when the check failed), then the scenario fails with ``failure`` if it did."""
    demo.timeline.add(where, actor, what, (time.monotonic() - began) * 1000, ok=ok)
    require(ok, failure)


class Background(Generic[T]):
    """A server stream (a guardian's notifications, a trip watch) read in the background; the
    scenario waits for the item it expects and fails when it does not come in time."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.items: list[T] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Background[T]:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for item in self.call:
                self.items.append(item)

    async def until(self, predicate: Callable[[T], bool], what: str, timeout_s: float = 8.0) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            for item in self.items:
                if predicate(item):
                    return item
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not arrive within {timeout_s} s")
            if self._task is not None and self._task.done():
                raise AssertionError(f"the stream ended before {what}")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self.call.cancel()
        if self._task is not None:
            self._task.cancel()


class CenterClient:
    """One center's public API (TLS listener) as the demo's actors call it."""

    def __init__(self, demo: Demo, center_id: str) -> None:
        self.demo = demo
        self.center_id = center_id
        self.center = f"centers/{center_id}"
        cluster = demo.cluster
        self.channel = tls_channel(
            cluster.pki.ca_cert, demo.centers[center_id].address, cluster.certs_for(center_id).server_name
        )
        self.registry = child_safety_pb2_grpc.ChildSafetyServiceStub(self.channel)
        self.tag_events = child_safety_pb2_grpc.TagEventServiceStub(self.channel)
        self.guardians = guardian_pb2_grpc.GuardianServiceStub(self.channel)
        self.trips = safe_trip_pb2_grpc.SafeTripServiceStub(self.channel)
        self.emergencies = emergency_pb2_grpc.EmergencyServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close(None)

    # -- tokens -------------------------------------------------------------------------------

    def operator(self) -> Metadata:
        return self.demo.operator(self.center_id)

    def guardian(self, guardian_id: str) -> Metadata:
        return token(self.demo.cluster, common_pb2.ROLE_GUARDIAN, f"guardians/{guardian_id}")

    def gateway(self, subject: str) -> Metadata:
        return token(self.demo.cluster, common_pb2.ROLE_READER_GATEWAY, subject, center=self.center)

    def app_user(self, label: str) -> Metadata:
        subject = f"users/{label}-{uuid.uuid4().hex[:6]}"
        return token(self.demo.cluster, common_pb2.ROLE_APP_USER, subject)

    # -- calls --------------------------------------------------------------------------------

    async def create(self, collection: str, resource_id: str, resource: Any) -> Any:
        """The operator registers a ward, tag, reader or zone (ChildSafetyService, CHD-001)."""
        rpc, request_class, field = CREATE[collection]
        request = request_class(parent=self.center, request_id=str(uuid.uuid4()))
        getattr(request, field).CopyFrom(resource)
        setattr(request, f"{field}_id", resource_id)
        return await getattr(self.registry, rpc)(request, metadata=self.operator(), timeout=5)

    def notifications(self, recipient_id: str) -> Background[guardian_pb2.StreamNotificationsResponse]:
        """A guardian's (or school contact's) notification stream, read in the background."""
        call = self.guardians.StreamNotifications(
            guardian_pb2.StreamNotificationsRequest(parent=f"{self.center}/guardians/{recipient_id}"),
            metadata=self.guardian(recipient_id),
        )
        return Background[guardian_pb2.StreamNotificationsResponse](call).start()

    async def staff_view(self, name: str) -> emergency_pb2.Emergency:
        seen: emergency_pb2.Emergency = await self.emergencies.GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=name), metadata=self.operator(), timeout=3
        )
        return seen

    async def dispatched(self, name: str, timeout_s: float = 5.0) -> emergency_pb2.Emergency:
        """The emergency as the operator sees it once a dispatch has been requested."""

        async def probe() -> emergency_pb2.Emergency | None:
            seen = await self.staff_view(name)
            return seen if seen.dispatched_agencies else None

        found: emergency_pb2.Emergency = await self.demo.eventually(probe, f"a dispatch of {name}", timeout_s)
        return found


class Gateway:
    """A reader gateway's IngestTagEvents stream: one event at a time, each sent once its
    predecessor is acknowledged (the order of one reader's events, GW-004)."""

    def __init__(self, client: CenterClient, subject: str, mode: int) -> None:
        self.client = client
        self.mode = mode
        stub: Any = client.tag_events  # a call without request iterator: written one event at a time
        self.call: Any = stub.IngestTagEvents(metadata=client.gateway(subject), timeout=20)

    async def send(
        self, reader_id: str, kind: int, tag_uid: str = "", direction: int = 0
    ) -> child_safety_pb2.TagEventAck:
        event = child_safety_pb2.TagEvent(
            event_id=str(uuid.uuid4()),
            reader=f"{self.client.center}/readers/{reader_id}",
            tag_uid=tag_uid,
            kind=kind,  # type: ignore[arg-type]
            mode=self.mode,  # type: ignore[arg-type]
        )
        if kind == child_safety_pb2.TAG_EVENT_KIND_SIGHTING:
            event.sighting.CopyFrom(
                child_safety_pb2.SightingDetails(rssi_dbm=-60, direction=direction)  # type: ignore[arg-type]
            )
        event.observed_time.FromDatetime(datetime.now(UTC))
        await self.call.write(child_safety_pb2.IngestTagEventsRequest(event=event))
        ack: child_safety_pb2.TagEventAck = await self.call.read()
        if ack.event_id != event.event_id or ack.status != child_safety_pb2.TAG_EVENT_ACK_STATUS_ACCEPTED:
            status = kind_name(child_safety_pb2.TagEventAckStatus, ack.status, "TAG_EVENT_ACK_STATUS_")
            raise AssertionError(f"event at {reader_id} acknowledged {status}: {ack.error.message}")
        return ack

    async def close(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.call.done_writing()
        self.call.cancel()
