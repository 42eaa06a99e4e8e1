"""The reference center's child-safety demo data and durability, as a real process: the demo guardian
sees the two demo wards, a gateway sighting at the demo school gate notifies them, and an event
acknowledged before a kill -9 is still known after the restart (TAG-002: DUPLICATE, not re-derived)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc as csg
from ansim.v1 import common_pb2
from ansim.v1 import guardian_pb2 as gd
from ansim.v1 import guardian_pb2_grpc as gdg

from tests.support.center import CenterProcess, start_center

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENTER = "centers/demo"
GUARDIAN = f"{CENTER}/guardians/demo-guardian"


def school_sighting(event_id: str) -> cs.TagEvent:
    event = cs.TagEvent(
        event_id=event_id,
        reader=f"{CENTER}/readers/school-gate",
        tag_uid="3F2A9C01",
        kind=cs.TAG_EVENT_KIND_SIGHTING,
        mode=common_pb2.MODE_TEST,
        sighting=cs.SightingDetails(direction=cs.SIGHTING_DIRECTION_INBOUND),
    )
    event.observed_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=2))
    return event


async def submit(center: CenterProcess, event: cs.TagEvent) -> cs.TagEventAck:
    async with center.channel() as channel:
        response = await csg.TagEventServiceStub(channel).SubmitTagEvents(
            cs.SubmitTagEventsRequest(events=[event], request_id=str(uuid.uuid4())),
            metadata=center.metadata("READER_GATEWAY"),
            timeout=10,
        )
    return response.acks[0]


async def arrivals(center: CenterProcess) -> list[gd.Notification]:
    async with center.channel() as channel:
        listed = await gdg.GuardianServiceStub(channel).ListNotifications(
            gd.ListNotificationsRequest(parent=GUARDIAN), metadata=center.metadata("GUARDIAN"), timeout=10
        )
    return [n for n in listed.notifications if n.event_kind == cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL]


async def test_demo_wards_notifications_and_durable_dedup(tmp_path: Path) -> None:
    data = tmp_path / "center"
    center = start_center(data)
    try:
        async with center.channel() as channel:
            wards = await csg.ChildSafetyServiceStub(channel).ListWards(
                cs.ListWardsRequest(parent=CENTER), metadata=center.metadata("GUARDIAN"), timeout=10
            )
        assert sorted(w.display_name for w in wards.wards) == ["민준", "서연"]
        event = school_sighting(str(uuid.uuid4()))
        ack = await submit(center, event)
        assert ack.status == cs.TAG_EVENT_ACK_STATUS_ACCEPTED
        for _ in range(20):
            if await arrivals(center):
                break
            await asyncio.sleep(0.25)
        found = await arrivals(center)
        assert [n.ward_display_name for n in found] == ["민준"]
    finally:
        center.process.send_signal(signal.SIGKILL)
        center.process.wait(timeout=30)
    restarted = start_center(data)
    try:
        again = await submit(restarted, event)
        assert again.status == cs.TAG_EVENT_ACK_STATUS_DUPLICATE
        assert len(await arrivals(restarted)) == 1, "the repeat must not derive again"
    finally:
        assert restarted.terminate() == 0
