"""Derivation state written with the acknowledged events survives kill -9 (TAG-002, TAG-012, TAG-021).

The ingest stores a stream's waiting events in one transaction and keeps the ward's derivation
state (presence, TAG-021 clock) in memory while it runs, writing it back before the commit. Here a
gateway stream delivers sightings of the demo ward at the demo school gate in one go; once all are
acked the center is killed with SIGKILL and restarted on the same data. Sightings that are judged
only by the state left by the first ones must then derive nothing:

* an UNSPECIFIED sighting 30 s after the last one (TAG-012: < 120 s changes nothing; with the
  presence lost it would toggle the ward inside again, a second ARRIVED_SCHOOL);
* an OUTBOUND sighting older than one already evaluated (TAG-021; with the clock lost it would
  derive LEFT_SCHOOL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc as csg
from ansim.v1 import guardian_pb2 as gd
from ansim.v1 import guardian_pb2_grpc as gdg

from tests.support.center import CenterProcess, start_center
from tests.support.tags import school_gate_sighting

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENTER = "centers/demo"
GUARDIAN = f"{CENTER}/guardians/demo-guardian"
PLACE_KINDS = (cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL, cs.DERIVED_EVENT_KIND_LEFT_SCHOOL)


async def ingest(center: CenterProcess, events: list[cs.TagEvent]) -> list[cs.TagEventAck]:
    """Send ``events`` on one IngestTagEvents stream without waiting, then read every ack."""
    requests = [cs.IngestTagEventsRequest(event=e) for e in events]
    async with center.channel() as channel:
        call = csg.TagEventServiceStub(channel).IngestTagEvents(
            iter(requests), metadata=center.metadata("READER_GATEWAY"), timeout=30
        )
        return [ack async for ack in call]


async def place_events(center: CenterProcess) -> list[int]:
    async with center.channel() as channel:
        listed = await gdg.GuardianServiceStub(channel).ListNotifications(
            gd.ListNotificationsRequest(parent=GUARDIAN, page_size=100),
            metadata=center.metadata("GUARDIAN"),
            timeout=10,
        )
    return [n.event_kind for n in listed.notifications if n.event_kind in PLACE_KINDS]


async def test_derivation_state_of_acked_events_survives_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "center"
    t = datetime.now(UTC) - timedelta(seconds=100)
    center = start_center(data)
    try:
        first = [
            school_gate_sighting(t, cs.SIGHTING_DIRECTION_INBOUND),  # → ARRIVED_SCHOOL
            school_gate_sighting(t + timedelta(seconds=5), cs.SIGHTING_DIRECTION_INBOUND),  # inside already
            school_gate_sighting(t + timedelta(seconds=10), cs.SIGHTING_DIRECTION_INBOUND),
        ]
        acks = await ingest(center, first)
        assert [a.status for a in acks] == [cs.TAG_EVENT_ACK_STATUS_ACCEPTED] * 3
        assert await place_events(center) == [cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL]
    finally:
        center.process.kill()  # SIGKILL right after the acks: no graceful shutdown
        center.process.wait()

    restarted = start_center(data)
    try:
        after = [
            school_gate_sighting(t + timedelta(seconds=40), cs.SIGHTING_DIRECTION_UNSPECIFIED),  # TAG-012
            school_gate_sighting(t + timedelta(seconds=2), cs.SIGHTING_DIRECTION_OUTBOUND),  # TAG-021
        ]
        acks = await ingest(restarted, after)
        assert [a.status for a in acks] == [cs.TAG_EVENT_ACK_STATUS_ACCEPTED] * 2
        assert await place_events(restarted) == [cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL]
        # and the state still moves on: an OUTBOUND sighting after the newest one leaves school
        acks = await ingest(
            restarted, [school_gate_sighting(t + timedelta(seconds=50), cs.SIGHTING_DIRECTION_OUTBOUND)]
        )
        assert acks[0].status == cs.TAG_EVENT_ACK_STATUS_ACCEPTED
        assert sorted(await place_events(restarted)) == sorted(PLACE_KINDS)
    finally:
        restarted.terminate()
