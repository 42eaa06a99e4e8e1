"""SIGTERM with timers armed: the center stops its background work before the store closes.

A real ``ansim serve --demo`` gets work that arms every kind of timer: an SOS (re-notify and
escalation timers, EMG-*), a TEST safe trip due in 2 s (overdue timer), tag sightings (the
child-safety scheduler) — then SIGTERM. The process must exit 0 within a few seconds with no
ERROR, traceback or "closed database" in its log (no loop may outlive the store), and a restart
on the same data directory must serve the acknowledged work unchanged (EMG-001, TAG-002).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import grpc.aio
import pytest
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc as csg
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc, safe_trip_pb2, safe_trip_pb2_grpc

from reference_server.security.tokens import TokenIssuer
from tests.support.center import CenterProcess, start_center
from tests.support.tags import school_gate_sighting

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENTER = "centers/demo"
#: Exit after SIGTERM well inside the 10 s default grace: nothing may hold the shutdown.
STOP_WITHIN_S = 8.0
FORBIDDEN = ('"ERROR"', '"CRITICAL"', "Traceback", "closed database")


def location(lat: float, lon: float) -> common_pb2.Location:
    loc = common_pb2.Location(latitude=lat, longitude=lon, radius_m=15)
    loc.fix_time.FromDatetime(datetime.now(UTC))
    return loc


def sos_request() -> emergency_pb2.RaiseEmergencyRequest:
    return emergency_pb2.RaiseEmergencyRequest(
        parent=CENTER,
        request_id=str(uuid.uuid4()),
        mode=common_pb2.MODE_TEST,
        kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
        location=location(37.5729, 126.9794),
    )


async def raise_sos(center: CenterProcess) -> emergency_pb2.Emergency:
    async with center.channel() as channel:
        return await emergency_pb2_grpc.EmergencyServiceStub(channel).RaiseEmergency(
            sos_request(), metadata=center.metadata("APP_USER"), timeout=10
        )


async def start_trip(center: CenterProcess) -> safe_trip_pb2.SafeTrip:
    request = safe_trip_pb2.StartSafeTripRequest(
        parent=CENTER,
        request_id=str(uuid.uuid4()),
        mode=common_pb2.MODE_TEST,
        start_location=location(37.5705, 126.9768),
        destination=common_pb2.Point(latitude=37.5790, longitude=126.9730),
        guardians=[safe_trip_pb2.TripGuardian(display_name="엄마", phone="010-0000-0000")],
    )
    request.expected_arrival_time.FromDatetime(datetime.now(UTC) + timedelta(seconds=2))
    async with center.channel() as channel:
        return await safe_trip_pb2_grpc.SafeTripServiceStub(channel).StartSafeTrip(
            request, metadata=center.metadata("APP_USER"), timeout=10
        )


def sightings() -> list[cs.TagEvent]:
    now = datetime.now(UTC)
    events = []
    for i in range(3):
        observed = now - timedelta(seconds=30 - 5 * i)
        events.append(school_gate_sighting(observed, cs.SIGHTING_DIRECTION_INBOUND))
    return events


async def ingest(center: CenterProcess, events: list[cs.TagEvent]) -> list[int]:
    """The ack status of each event, sent on one gateway stream."""
    requests = [cs.IngestTagEventsRequest(event=e) for e in events]
    async with center.channel() as channel:
        call = csg.TagEventServiceStub(channel).IngestTagEvents(
            iter(requests), metadata=center.metadata("READER_GATEWAY"), timeout=30
        )
        return [ack.status async for ack in call]


def stop_cleanly(center: CenterProcess) -> float:
    began = time.monotonic()
    code = center.terminate(timeout=30)
    elapsed = time.monotonic() - began
    log = center.log()
    assert code == 0, log
    assert elapsed < STOP_WITHIN_S, f"stopped after {elapsed:.1f}s\n{log}"
    for needle in FORBIDDEN:
        assert needle not in log, f"{needle!r} in the log after SIGTERM\n{log}"
    return elapsed


async def test_sigterm_with_armed_timers_exits_cleanly_and_keeps_state(tmp_path: Path) -> None:
    data = tmp_path / "center"
    center = start_center(data)
    try:
        emergency = await raise_sos(center)
        trip = await start_trip(center)
        events = sightings()
        assert await ingest(center, events) == [cs.TAG_EVENT_ACK_STATUS_ACCEPTED] * 3
        await asyncio.sleep(3)  # the trip is overdue; every timer and scheduler has ticked at least once
    finally:
        stop_cleanly(center)

    restarted = start_center(data)
    try:
        async with restarted.channel() as channel:
            operator = restarted.metadata("CENTER_OPERATOR")
            stored = await emergency_pb2_grpc.EmergencyServiceStub(channel).GetEmergency(
                emergency_pb2.GetEmergencyRequest(name=emergency.name), metadata=operator, timeout=10
            )
            assert stored.incident_id == emergency.incident_id
            got = await safe_trip_pb2_grpc.SafeTripServiceStub(channel).GetSafeTrip(
                safe_trip_pb2.GetSafeTripRequest(name=trip.name),
                metadata=restarted.metadata("APP_USER"),
                timeout=10,
            )
            assert got.name == trip.name
        # The same events again: stored before the shutdown, so duplicates now [TAG-002].
        assert await ingest(restarted, events) == [cs.TAG_EVENT_ACK_STATUS_DUPLICATE] * 3
    finally:
        stop_cleanly(restarted)


async def test_sigterm_during_an_sos_burst_keeps_every_acknowledged_sos(tmp_path: Path) -> None:
    """Calls in flight at SIGTERM get the grace to finish; each acknowledged one is durable
    (EMG-001), and calls arriving after it are refused, never half-done."""
    data = tmp_path / "center"
    center = start_center(data)
    issuer = TokenIssuer.create("ansim-demo", data / "pki" / "token-issuer.key")
    acknowledged: list[emergency_pb2.Emergency] = []
    enough = asyncio.Event()
    try:
        async with center.channel() as channel:
            stub = emergency_pb2_grpc.EmergencyServiceStub(channel)

            async def press(i: int) -> None:
                token = issuer.issue(f"users/shutdown-{i}", common_pb2.ROLE_APP_USER)
                try:
                    reply = await stub.RaiseEmergency(
                        sos_request(), metadata=(("authorization", f"Bearer {token}"),), timeout=20
                    )
                except grpc.aio.AioRpcError:
                    return  # not acknowledged: the app retries with the same request_id
                acknowledged.append(reply)
                if len(acknowledged) >= 5:
                    enough.set()

            burst = [asyncio.create_task(press(i)) for i in range(30)]
            await asyncio.wait_for(enough.wait(), 30)
            center.process.terminate()  # SIGTERM while the rest of the burst is in flight
            await asyncio.gather(*burst)
    finally:
        stop_cleanly(center)

    restarted = start_center(data)
    try:
        async with restarted.channel() as channel:
            stub = emergency_pb2_grpc.EmergencyServiceStub(channel)
            operator = restarted.metadata("CENTER_OPERATOR")
            for emergency in acknowledged:
                stored = await stub.GetEmergency(
                    emergency_pb2.GetEmergencyRequest(name=emergency.name), metadata=operator, timeout=10
                )
                assert stored.incident_id == emergency.incident_id
    finally:
        stop_cleanly(restarted)
