"""The demo's local scenarios (issue #4), each against one center's public gRPC API:

- a child's tag sighted at the school gate tells her guardian she arrived (TAG-011, GRD-001), then
  two sightings in a danger zone notify the guardian (TAG-013); left unanswered, the notification
  climbs to the center, which raises a DANGER_ZONE_ENTRY emergency dispatched to 112, and on to the
  police rung (GRD-003, GRD-006, GRD-007);
- an emergency bell pressed in 안양 raises an EMERGENCY_BELL emergency there, dispatched to its police
  (acknowledged by the officer: DISPATCHED) and notified to the school contact (TAG-017);
- a safe trip whose arrival time passes alerts the guardian (OVERDUE, TRIP-004, TRIP-007) and,
  uncleared, becomes a SAFE_TRIP_OVERDUE emergency dispatched to 112 (TRIP-008).

The child and trip scenarios run in TEST mode with the short TEST timers the spec allows (the
cluster's ``TEST_TIMERS``); the three play at the same time, so the demo waits for those timers once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ansim.v1 import (
    child_safety_pb2 as cs,
)
from ansim.v1 import (
    common_pb2,
    dispatch_pb2,
    dispatch_pb2_grpc,
    emergency_pb2,
    safe_trip_pb2,
)
from ansim.v1 import (
    guardian_pb2 as gd,
)

from reference_server.demo.console import tls_channel, token
from reference_server.demo.local_support import Background, CenterClient, Gateway, circle, kind_name

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

CHILD = "child: school arrival and danger-zone entry"
BELL = "emergency bell press"
TRIP = "safe trip overdue"

SCHOOL = (37.5747, 126.9870)  # 종로 an elementary school
SCHOOL_GATE = (37.5742, 126.9868)
CONSTRUCTION = (37.5758, 126.9895)  # 익선동, a building site
ANYANG_BELL = (37.4016, 126.9229)  # 안양 만안구
TRIP_START = (37.5705, 126.9768)
TRIP_HOME = (37.5790, 126.9730)

Notice = gd.StreamNotificationsResponse


async def play(demo: Demo) -> None:
    """Play the three scenarios at the same time and report them in a fixed order."""
    before = len(demo.results)
    await asyncio.gather(
        demo.scenario(CHILD, lambda: child(demo), needs=("seoul-jongno", "ansim.v1.ChildSafetyService")),
        demo.scenario(BELL, lambda: bell(demo), needs=("anyang", "ansim.v1.TagEventService")),
        demo.scenario(TRIP, lambda: trip_overdue(demo), needs=("seoul-jongno", "ansim.v1.SafeTripService")),
    )
    order = [CHILD, BELL, TRIP]
    demo.results[before:] = sorted(demo.results[before:], key=lambda r: order.index(r.name))


def _change(item: Notice) -> str:
    return kind_name(gd.NotificationChange, item.change, "NOTIFICATION_CHANGE_")


def _level(level: int) -> str:
    return kind_name(gd.EscalationLevel, level, "ESCALATION_LEVEL_")


def _event(kind: int) -> str:
    return kind_name(cs.DerivedEventKind, kind, "DERIVED_EVENT_KIND_")


def _alert(kind: int) -> str:
    return kind_name(safe_trip_pb2.TripAlertKind, kind, "TRIP_ALERT_KIND_")


def _agencies(emergency: emergency_pb2.Emergency) -> list[str]:
    return [a.agency for a in emergency.dispatched_agencies]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# -- child: school arrival and danger-zone entry (종로) -----------------------------------------------


async def child(demo: Demo) -> str:
    client = CenterClient(demo, "seoul-jongno")
    c, where = client.center, "centers/seoul-jongno"
    gateway_subject, guardian_id, tag_uid = "gateways/jongno-u-safe", "jiwoo-mom", "3F2A9C7701"
    await client.create(
        "zones",
        "anshim-school",
        cs.Zone(kind=cs.ZONE_KIND_SCHOOL, display_name="종로 안심초등학교", area=circle(*SCHOOL, 120)),
    )
    await client.create(
        "zones",
        "construction",
        cs.Zone(kind=cs.ZONE_KIND_DANGER, display_name="익선동 공사장", area=circle(*CONSTRUCTION, 40)),
    )
    for reader_id, kind, (lat, lon), zone, label in (
        ("school-gate", cs.READER_KIND_SCHOOL_GATE, SCHOOL_GATE, f"{c}/zones/anshim-school", "정문 리더기"),
        ("construction-lane", cs.READER_KIND_STREET, CONSTRUCTION, "", "공사장 옆 골목"),
    ):
        await client.create(
            "readers",
            reader_id,
            cs.Reader(
                kind=kind,
                display_name=label,
                location=common_pb2.Point(latitude=lat, longitude=lon),
                zone=zone,
                gateway=gateway_subject,
                active=True,
            ),
        )
    ward = await client.create(
        "wards",
        "jiwoo",
        cs.Ward(
            display_name="지우",
            guardians=[f"{c}/guardians/{guardian_id}"],
            school_zone=f"{c}/zones/anshim-school",
            active=True,
        ),
    )
    await client.create(
        "tags", "jiwoo-ble", cs.Tag(kind=cs.TAG_KIND_BLE, uid=tag_uid, ward=ward.name, active=True)
    )
    demo.timeline.add(
        where,
        "operator",
        f"registered ward 지우 (guardian {guardian_id}, BLE tag {tag_uid}), school gate reader,"
        " danger zone 익선동 공사장 with a street reader",
    )
    stream = client.notifications(guardian_id)
    gateway = Gateway(client, gateway_subject, common_pb2.MODE_TEST)
    try:
        began = time.monotonic()
        await gateway.send("school-gate", cs.TAG_EVENT_KIND_SIGHTING, tag_uid, cs.SIGHTING_DIRECTION_INBOUND)
        demo.timeline.add(where, "gateway", "IngestTagEvents: SIGHTING INBOUND at the school gate → ACCEPTED")
        arrived = await stream.until(
            lambda e: e.notification.event_kind == cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL, "ARRIVED_SCHOOL"
        )
        latency = (time.monotonic() - began) * 1000
        info = arrived.notification.severity == gd.NOTIFICATION_SEVERITY_INFO
        demo.timeline.add(
            where,
            "guardian",
            f"StreamNotifications: {_change(arrived)} ARRIVED_SCHOOL ({arrived.notification.summary}), INFO",
            latency,
            ok=info,
        )
        _require(info, "ARRIVED_SCHOOL is not INFO")
        danger = await _danger_zone_entry(demo, client, gateway, stream, tag_uid)
        return f"arrival notified in {latency:.0f} ms; {danger}"
    finally:
        stream.stop()
        await gateway.close()
        await client.close()


async def _danger_zone_entry(
    demo: Demo, client: CenterClient, gateway: Gateway, stream: Background[Notice], tag_uid: str
) -> str:
    """Two sightings in the danger zone (entry_sightings 2), the guardian does not answer."""
    where = client.center
    began = time.monotonic()
    for count in (1, 2):
        await gateway.send("construction-lane", cs.TAG_EVENT_KIND_SIGHTING, tag_uid)
        demo.timeline.add(
            where, "gateway", f"IngestTagEvents: SIGHTING {count}/2 in the danger zone → ACCEPTED"
        )

    def entered_event(e: Notice) -> bool:
        return e.notification.event_kind == cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE

    entered = await stream.until(entered_event, "ENTERED_DANGER_ZONE")
    note = entered.notification
    derived = note.derived_event_id
    emergency_rung = (
        note.severity == gd.NOTIFICATION_SEVERITY_EMERGENCY
        and note.escalation_level == gd.ESCALATION_LEVEL_GUARDIAN
        and note.HasField("ack_deadline")
    )
    step = (
        note.ack_deadline.ToDatetime(tzinfo=UTC) - note.create_time.ToDatetime(tzinfo=UTC)
    ).total_seconds()
    demo.timeline.add(
        where,
        "guardian",
        f"{_change(entered)} ENTERED_DANGER_ZONE ({note.zone_display_name}), EMERGENCY at GUARDIAN,"
        f" ack within {step:.0f} s (TEST step) — not acknowledged",
        (time.monotonic() - began) * 1000,
        ok=emergency_rung,
    )
    _require(emergency_rung, "ENTERED_DANGER_ZONE is not an EMERGENCY notification at GUARDIAN")

    centre = await stream.until(
        lambda e: (
            e.notification.derived_event_id == derived
            and e.change == gd.NOTIFICATION_CHANGE_ESCALATED
            and e.notification.escalation_level == gd.ESCALATION_LEVEL_CENTER
        ),
        "ESCALATED to CENTER",
        12.0,
    )
    demo.timeline.add(
        where,
        "guardian",
        f"{_change(centre)} → {_level(centre.notification.escalation_level)} (no school contact)",
    )
    linked = await stream.until(
        lambda e: (
            e.notification.derived_event_id == derived and e.change == gd.NOTIFICATION_CHANGE_EMERGENCY_LINKED
        ),
        "EMERGENCY_LINKED",
        8.0,
    )
    emergency_name = linked.notification.related_emergency
    operators = await client.guardians.ListNotifications(
        gd.ListNotificationsRequest(parent=f"{where}/guardians/operators"),
        metadata=client.operator(),
        timeout=3,
    )
    copies = [n for n in operators.notifications if n.derived_event_id == derived]
    _require(
        bool(copies) and copies[0].recipient_level == gd.ESCALATION_LEVEL_CENTER,
        "no operators' copy at the CENTER rung",
    )
    seen = await client.dispatched(emergency_name)
    agencies = _agencies(seen)
    right = (
        seen.kind == emergency_pb2.EMERGENCY_KIND_DANGER_ZONE_ENTRY
        and seen.mode == common_pb2.MODE_TEST
        and seen.ward == note.ward
        and agencies == ["agencies/seoul-112"]
    )
    demo.timeline.add(
        where,
        "emergency",
        f"operators' copy at CENTER; {emergency_name} DANGER_ZONE_ENTRY (TEST, ward {seen.ward})"
        f" linked to the notification, dispatched to {', '.join(agencies)}",
        (time.monotonic() - began) * 1000,
        ok=right,
    )
    _require(right, f"danger-zone emergency {seen.kind} for {seen.ward} dispatched to {agencies}")
    police = await stream.until(
        lambda e: (
            e.notification.derived_event_id == derived
            and e.change == gd.NOTIFICATION_CHANGE_ESCALATED
            and e.notification.escalation_level == gd.ESCALATION_LEVEL_POLICE_112
        ),
        "ESCALATED to POLICE_112",
        12.0,
    )
    top = not police.notification.HasField("ack_deadline")
    demo.timeline.add(
        where,
        "guardian",
        f"{_change(police)} → POLICE_112 (top rung, no further deadline)",
        (time.monotonic() - began) * 1000,
        ok=top,
    )
    _require(top, "the POLICE_112 rung still has an ack deadline")
    return f"danger zone: GUARDIAN → CENTER ({emergency_name}, seoul-112 dispatched) → POLICE_112"


# -- emergency bell press (안양) -------------------------------------------------------------------


async def bell(demo: Demo) -> str:
    client = CenterClient(demo, "anyang")
    c = where = client.center
    gateway_subject, teacher = "gateways/anyang-bells", "teacher-park"
    await client.create(
        "zones",
        "central-school-safe",
        cs.Zone(
            kind=cs.ZONE_KIND_SAFE_ZONE,
            display_name="안양 중앙초 안심구역",
            area=circle(*ANYANG_BELL, 150),
            school_contacts=[f"{c}/guardians/{teacher}"],
        ),
    )
    reader = await client.create(
        "readers",
        "bell-central-school",
        cs.Reader(
            kind=cs.READER_KIND_BELL_POLE,
            display_name="중앙초 앞 비상벨",
            location=common_pb2.Point(latitude=ANYANG_BELL[0], longitude=ANYANG_BELL[1]),
            zone=f"{c}/zones/central-school-safe",
            gateway=gateway_subject,
            active=True,
        ),
    )
    demo.timeline.add(where, "operator", f"registered bell pole {reader.name} (school contact {teacher})")
    stream = client.notifications(teacher)
    gateway = Gateway(client, gateway_subject, common_pb2.MODE_EXERCISE)
    try:
        began = time.monotonic()
        ack = await gateway.send("bell-central-school", cs.TAG_EVENT_KIND_BELL_PRESS)
        demo.timeline.add(
            where,
            "gateway",
            f"IngestTagEvents: BELL_PRESS (EXERCISE) → ACCEPTED {ack.emergency}".strip(),
            (time.monotonic() - began) * 1000,
        )
        notice = await stream.until(
            lambda e: (
                e.notification.event_kind == cs.DERIVED_EVENT_KIND_BELL
                and bool(e.notification.related_emergency)
            ),
            "the BELL notification with its emergency",
        )
        note = notice.notification
        school = note.recipient_level == gd.ESCALATION_LEVEL_SCHOOL
        demo.timeline.add(
            where,
            "school contact",
            f"StreamNotifications: BELL ({note.zone_display_name}) at {_level(note.recipient_level)},"
            f" related {note.related_emergency}",
            (time.monotonic() - began) * 1000,
            ok=school,
        )
        _require(school, f"the school contact's copy is at {_level(note.recipient_level)}")
        _require(not ack.emergency or ack.emergency == note.related_emergency, "ack and notification differ")
        seen = await client.dispatched(note.related_emergency)
        agencies = _agencies(seen)
        right = (
            seen.kind == emergency_pb2.EMERGENCY_KIND_EMERGENCY_BELL
            and seen.reader == reader.name
            and seen.handling_center == c
            and agencies == ["agencies/gyeonggi-south-112"]
        )
        demo.timeline.add(
            where,
            "emergency",
            f"{seen.name} EMERGENCY_BELL at the pole, handled here, dispatched to {', '.join(agencies)}",
            (time.monotonic() - began) * 1000,
            ok=right,
        )
        _require(right, f"bell emergency {seen.kind} at {seen.handling_center} dispatched to {agencies}")
        await _officer_acknowledges(demo, client, seen)
        dispatched = await _state(client, seen.name, emergency_pb2.EMERGENCY_STATE_DISPATCHED)
        demo.timeline.add(
            where, "emergency", f"{dispatched.name} → DISPATCHED", (time.monotonic() - began) * 1000
        )
        acked = await client.guardians.AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(
                name=note.name, request_id=str(uuid.uuid4()), note="현장 확인 중"
            ),
            metadata=client.guardian(teacher),
            timeout=3,
        )
        _require(acked.HasField("acknowledged_by"), "the school contact's acknowledgement was not effective")
        demo.timeline.add(where, "school contact", "AcknowledgeNotification (SCHOOL rung) → ACKNOWLEDGED")
        return (
            "EMERGENCY_BELL at anyang, gyeonggi-south-112 acknowledged (DISPATCHED), school contact notified"
        )
    finally:
        stream.stop()
        await gateway.close()
        await client.close()


async def _officer_acknowledges(demo: Demo, client: CenterClient, seen: emergency_pb2.Emergency) -> None:
    """The 112 officer, over mutual TLS with her client certificate, acknowledges the dispatch."""
    cluster, entry = demo.cluster, seen.dispatched_agencies[0]
    channel = tls_channel(
        cluster.pki.ca_cert,
        demo.centers[client.center_id].mtls_address,
        cluster.certs_for(client.center_id).server_name,
        cluster.pki.client_cert("POLICE_OFFICER"),
        cluster.pki.client_key("POLICE_OFFICER"),
    )
    officer = token(cluster, common_pb2.ROLE_POLICE_OFFICER, "officers/gyeonggi-7", agency=entry.agency)
    try:
        await dispatch_pb2_grpc.DispatchServiceStub(channel).AcknowledgeDispatch(
            dispatch_pb2.AcknowledgeDispatchRequest(
                name=entry.dispatch, request_id=str(uuid.uuid4()), unit_id="안양-순7"
            ),
            metadata=officer,
            timeout=3,
        )
    finally:
        await channel.close(None)
    demo.timeline.add(
        client.center,
        entry.agency.removeprefix("agencies/"),
        f"acknowledged {entry.dispatch} (unit 안양-순7)",
    )


async def _state(client: CenterClient, name: str, state: int) -> emergency_pb2.Emergency:
    async def probe() -> emergency_pb2.Emergency | None:
        seen = await client.staff_view(name)
        return seen if seen.state == state else None

    label = kind_name(emergency_pb2.EmergencyState, state, "EMERGENCY_STATE_")
    found: emergency_pb2.Emergency = await client.demo.eventually(probe, f"{name} {label}", 5.0)
    return found


# -- safe trip overdue (종로) ----------------------------------------------------------------------


async def trip_overdue(demo: Demo) -> str:
    client = CenterClient(demo, "seoul-jongno")
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
        raised = await guardian.until(
            lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_ALERT_RAISED,
            "ALERT_RAISED to the guardian",
            15.0,
        )
        overdue = (
            raised.alert.kind == safe_trip_pb2.TRIP_ALERT_KIND_OVERDUE
            and raised.alert.notified_guardian_count == 1
        )
        demo.timeline.add(
            where,
            "guardian",
            f"WatchSafeTrip: ALERT_RAISED {_alert(raised.alert.kind)},"
            f" {raised.alert.notified_guardian_count} guardian told (text + app); nobody clears it",
            (time.monotonic() - began) * 1000,
            ok=overdue,
        )
        _require(overdue, "the alert is not OVERDUE with one guardian notified")
        escalated = await app.until(
            lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_ESCALATED, "ESCALATED to the app", 12.0
        )
        emergency_name = escalated.safe_trip.emergency
        demo.timeline.add(
            where, "app", f"WatchSafeTrip: ESCALATED → {emergency_name}", (time.monotonic() - began) * 1000
        )
        seen = await client.dispatched(emergency_name)
        agencies = _agencies(seen)
        right = (
            seen.kind == emergency_pb2.EMERGENCY_KIND_SAFE_TRIP_OVERDUE
            and seen.safe_trip == trip.name
            and seen.mode == common_pb2.MODE_TEST
            and agencies == ["agencies/seoul-112"]
        )
        demo.timeline.add(
            where,
            "emergency",
            f"{emergency_name} SAFE_TRIP_OVERDUE (TEST) for {seen.safe_trip},"
            f" dispatched to {', '.join(agencies)}",
            (time.monotonic() - began) * 1000,
            ok=right,
        )
        _require(right, f"trip emergency {seen.kind} for {seen.safe_trip} dispatched to {agencies}")
        await guardian.until(
            lambda e: e.type == safe_trip_pb2.SAFE_TRIP_EVENT_TYPE_ESCALATED, "ESCALATED to the guardian", 3.0
        )
        return f"OVERDUE told to the guardian, escalated to {emergency_name}, seoul-112 dispatched"
    finally:
        app.stop()
        guardian.stop()
        await client.close()
