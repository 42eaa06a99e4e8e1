"""Demo scenario: a safe trip that becomes overdue (종로, TEST mode).

The traveller's app starts a trip due two seconds later with her mother as guardian (text message
and guardian app); both watch it (WatchSafeTrip). Past the arrival time plus the TEST grace the
trip alerts OVERDUE and the guardian is told (TRIP-004, TRIP-007); nobody clears it, so after the
TEST escalation delay the center raises a SAFE_TRIP_OVERDUE emergency, dispatched to 112, and the
trip is ESCALATED (TRIP-008)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ansim.v1 import common_pb2, emergency_pb2, safe_trip_pb2

from reference_server.demo.local_support import (
    Background,
    CenterClient,
    alert_name,
    checked,
    dispatched_to,
    state_name,
)

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

TRIP_START = (37.5705, 126.9768)
TRIP_HOME = (37.5790, 126.9730)


async def trip_overdue(demo: Demo) -> str:
    client = CenterClient(demo, "seoul-jongno")
    try:
        return await _overdue(demo, client)
    finally:
        await client.close()


async def _overdue(demo: Demo, client: CenterClient) -> str:
    where, mom = client.center, "sujin-mom"
    user = client.app_user("traveller")
    now = datetime.now(UTC)
    start = demo.loc(*TRIP_START, 15.0, now - timedelta(seconds=1))
    request = safe_trip_pb2.StartSafeTripRequest(
        parent=where,
        request_id=str(uuid.uuid4()),
        mode=common_pb2.MODE_TEST,
        start_location=start,
        destination=common_pb2.Point(latitude=TRIP_HOME[0], longitude=TRIP_HOME[1]),
        guardians=[
            safe_trip_pb2.TripGuardian(
                display_name="엄마", phone="010-0000-0000", subject_id=f"guardians/{mom}"
            )
        ],
    )
    request.expected_arrival_time.FromDatetime(now + timedelta(seconds=2))
    began = time.monotonic()
    trip: safe_trip_pb2.SafeTrip = await client.trips.StartSafeTrip(request, metadata=user, timeout=5)
    timers = trip.timers
    demo.timeline.add(
        where,
        "app",
        f"StartSafeTrip (TEST, arrival in 2 s) → {trip.name} ACTIVE; grace"
        f" {timers.overdue_grace.seconds} s, escalation {timers.escalation_delay.seconds} s (TEST timers)",
        (time.monotonic() - began) * 1000,
    )
    app = Background[safe_trip_pb2.SafeTripEvent](
        client.trips.WatchSafeTrip(safe_trip_pb2.WatchSafeTripRequest(name=trip.name), metadata=user)
    ).start()
    guardian = Background[safe_trip_pb2.SafeTripEvent](
        client.trips.WatchSafeTrip(
            safe_trip_pb2.WatchSafeTripRequest(name=trip.name), metadata=client.guardian(mom)
        )
    ).start()
    try:
        for watcher, who in ((app, "app"), (guardian, "guardian")):
            snapshot = await watcher.until(
                lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_SNAPSHOT, f"the {who}'s SNAPSHOT"
            )
            demo.timeline.add(where, who, f"WatchSafeTrip: SNAPSHOT {state_name(snapshot.safe_trip.state)}")
        raised = await guardian.until(
            lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_ALERT_RAISED,
            "ALERT_RAISED to the guardian",
            15.0,
        )
        overdue = (
            raised.alert.kind == safe_trip_pb2.TRIP_ALERT_KIND_OVERDUE
            and raised.alert.notified_guardian_count == 1
        )
        checked(
            demo,
            where,
            "guardian",
            f"WatchSafeTrip: ALERT_RAISED {alert_name(raised.alert.kind)},"
            f" {raised.alert.notified_guardian_count} guardian told (text + app); nobody clears it",
            began,
            ok=overdue,
            failure="the alert is not OVERDUE with one guardian notified",
        )
        escalated = await app.until(
            lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_ESCALATED, "ESCALATED to the app", 12.0
        )
        emergency_name = escalated.safe_trip.emergency
        demo.timeline.add(
            where, "app", f"WatchSafeTrip: ESCALATED → {emergency_name}", (time.monotonic() - began) * 1000
        )
        seen = await client.dispatched(emergency_name)
        agencies = dispatched_to(seen)
        right = (
            seen.kind == emergency_pb2.EMERGENCY_KIND_SAFE_TRIP_OVERDUE
            and seen.safe_trip == trip.name
            and seen.mode == common_pb2.MODE_TEST
            and agencies == ["agencies/seoul-112"]
        )
        checked(
            demo,
            where,
            "emergency",
            f"{emergency_name} SAFE_TRIP_OVERDUE (TEST) for {seen.safe_trip},"
            f" dispatched to {', '.join(agencies)}",
            began,
            ok=right,
            failure=f"trip emergency {seen.kind} for {seen.safe_trip} dispatched to {agencies}",
        )
        await guardian.until(
            lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_ESCALATED, "ESCALATED to the guardian", 3.0
        )
        return f"OVERDUE told to the guardian, escalated to {emergency_name}, seoul-112 dispatched"
    finally:
        app.stop()
        guardian.stop()
