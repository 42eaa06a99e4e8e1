"""Demo scenario: a child's day at school as her guardian sees it (종로, TEST mode).

The operator registers a ward with her BLE tag, a school gate reader and a danger zone with a street
reader in it; the school's gateway streams the sightings (IngestTagEvents). A sighting at the gate
notifies the guardian of the arrival (TAG-011, GRD-001); two sightings in the danger zone notify her
of the entry (TAG-013, EMERGENCY); left unanswered, the notification climbs to the center, which
raises a DANGER_ZONE_ENTRY emergency dispatched to 112, and on to the police rung (GRD-003, GRD-006,
GRD-007), each step seen on the guardian's StreamNotifications."""

from __future__ import annotations

import time
from datetime import UTC
from typing import TYPE_CHECKING

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, emergency_pb2
from ansim.v1 import guardian_pb2 as gd

from reference_server.demo.local_support import (
    Background,
    CenterClient,
    Gateway,
    change_name,
    checked,
    circle,
    dispatched_to,
    level_name,
    require,
)

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

SCHOOL = (37.5747, 126.9870)  # an elementary school in 종로
SCHOOL_GATE = (37.5742, 126.9868)
CONSTRUCTION = (37.5758, 126.9895)  # 익선동, a building site

Notice = gd.StreamNotificationsResponse
GATEWAY = "gateways/jongno-u-safe"  # the school's reader gateway (token subject)
GUARDIAN = "jiwoo-mom"
TAG_UID = "3F2A9C7701"


async def child(demo: Demo) -> str:
    client = CenterClient(demo, "seoul-jongno")
    # The guardian's app is open before anything happens: her stream is subscribed by the time
    # the registration is done (INFO notifications are not replayed to a late subscriber, GRD-011).
    stream = client.notifications(GUARDIAN)
    gateway = Gateway(client, GATEWAY, common_pb2.MODE_TEST)
    try:
        await _register(demo, client)
        latency = await _school_arrival(demo, client, gateway, stream)
        danger = await _danger_zone_entry(demo, client, gateway, stream)
        return f"arrival notified in {latency:.0f} ms; {danger}"
    finally:
        stream.stop()
        await gateway.close()
        await client.close()


async def _register(demo: Demo, client: CenterClient) -> None:
    """The operator registers the school, the danger zone, their readers, the ward and her tag."""
    c = client.center
    await client.create(
        "zones",
        "anshim-school",
        cs.Zone(kind=cs.ZONE_KIND_SCHOOL, display_name="종로 안심초등학교", area=circle(*SCHOOL, 120)),
    )
    await client.create(  # no active windows: active all day
        "zones",
        "construction",
        cs.Zone(kind=cs.ZONE_KIND_DANGER, display_name="익선동 공사장", area=circle(*CONSTRUCTION, 40)),
    )
    for reader_id, kind, (lat, lon), zone, label in (
        ("school-gate", cs.READER_KIND_SCHOOL_GATE, SCHOOL_GATE, f"{c}/zones/anshim-school", "정문 리더기"),
        ("construction-lane", cs.READER_KIND_STREET, CONSTRUCTION, "", "공사장 옆 골목"),
    ):
        reader = cs.Reader(
            kind=kind,
            display_name=label,
            location=common_pb2.Point(latitude=lat, longitude=lon),
            zone=zone,
            gateway=GATEWAY,
            active=True,
        )
        await client.create("readers", reader_id, reader)
    ward = cs.Ward(
        display_name="지우",
        guardians=[f"{c}/guardians/{GUARDIAN}"],
        school_zone=f"{c}/zones/anshim-school",
        active=True,
    )
    await client.create("wards", "jiwoo", ward)
    tag = cs.Tag(kind=cs.TAG_KIND_BLE, uid=TAG_UID, ward=f"{c}/wards/jiwoo", active=True)
    await client.create("tags", "jiwoo-ble", tag)
    demo.timeline.add(
        c,
        "operator",
        f"registered ward 지우 (guardian {GUARDIAN}, BLE tag {TAG_UID}), school gate reader,"
        " danger zone 익선동 공사장 with a street reader",
    )


async def _school_arrival(
    demo: Demo, client: CenterClient, gateway: Gateway, stream: Background[Notice]
) -> float:
    """A sighting at the school gate: ARRIVED_SCHOOL (INFO) on the guardian's stream [TAG-011]."""
    where = client.center
    began = time.monotonic()
    await gateway.send("school-gate", cs.TAG_EVENT_KIND_SIGHTING, TAG_UID, cs.SIGHTING_DIRECTION_INBOUND)
    demo.timeline.add(where, "gateway", "IngestTagEvents: SIGHTING INBOUND at the school gate → ACCEPTED")
    arrived = await stream.until(
        lambda e: e.notification.event_kind == cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL, "ARRIVED_SCHOOL"
    )
    latency = (time.monotonic() - began) * 1000
    info = arrived.notification.severity == gd.NOTIFICATION_SEVERITY_INFO
    demo.timeline.add(
        where,
        "guardian",
        f"StreamNotifications: {change_name(arrived)} ARRIVED_SCHOOL ({arrived.notification.summary}), INFO",
        latency,
        ok=info,
    )
    require(info, "ARRIVED_SCHOOL is not INFO")
    return latency


async def _danger_zone_entry(
    demo: Demo, client: CenterClient, gateway: Gateway, stream: Background[Notice]
) -> str:
    """Two sightings in the danger zone (entry_sightings 2) [TAG-013]; the guardian does not answer,
    so the notification climbs GUARDIAN → CENTER (emergency) → POLICE_112 [GRD-003, GRD-006, GRD-007]."""
    where = client.center
    began = time.monotonic()
    for count in (1, 2):
        await gateway.send("construction-lane", cs.TAG_EVENT_KIND_SIGHTING, TAG_UID)
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
    checked(
        demo,
        where,
        "guardian",
        f"{change_name(entered)} ENTERED_DANGER_ZONE ({note.zone_display_name}), EMERGENCY at GUARDIAN,"
        f" ack within {step:.0f} s (TEST step) — not acknowledged",
        began,
        ok=emergency_rung,
        failure="ENTERED_DANGER_ZONE is not an EMERGENCY notification at GUARDIAN",
    )

    centre = await _escalation(stream, derived, gd.ESCALATION_LEVEL_CENTER)
    demo.timeline.add(
        where,
        "guardian",
        f"{change_name(centre)} → {level_name(centre.notification.escalation_level)} (no school contact)",
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
    require(
        bool(copies) and copies[0].recipient_level == gd.ESCALATION_LEVEL_CENTER,
        "no operators' copy at the CENTER rung",
    )
    seen = await client.dispatched(emergency_name)
    agencies = dispatched_to(seen)
    right = (
        seen.kind == emergency_pb2.EMERGENCY_KIND_DANGER_ZONE_ENTRY
        and seen.mode == common_pb2.MODE_TEST
        and seen.ward == note.ward
        and agencies == ["agencies/seoul-112"]
    )
    checked(
        demo,
        where,
        "emergency",
        f"operators' copy at CENTER; {emergency_name} DANGER_ZONE_ENTRY (TEST, ward {seen.ward})"
        f" linked to the notification, dispatched to {', '.join(agencies)}",
        began,
        ok=right,
        failure=f"danger-zone emergency {seen.kind} for {seen.ward} dispatched to {agencies}",
    )
    police = await _escalation(stream, derived, gd.ESCALATION_LEVEL_POLICE_112)
    top = not police.notification.HasField("ack_deadline")
    checked(
        demo,
        where,
        "guardian",
        f"{change_name(police)} → POLICE_112 (top rung, no further deadline)",
        began,
        ok=top,
        failure="the POLICE_112 rung still has an ack deadline",
    )
    return f"danger zone: GUARDIAN → CENTER ({emergency_name}, seoul-112 dispatched) → POLICE_112"


async def _escalation(stream: Background[Notice], derived: str, level: int) -> Notice:
    """The unanswered notification of one derived event climbing to ``level`` on the guardian's
    stream [GRD-003]; both rungs the scenario waits for come within the TEST escalation step."""
    return await stream.until(
        lambda e: (
            e.notification.derived_event_id == derived
            and e.change == gd.NOTIFICATION_CHANGE_ESCALATED
            and e.notification.escalation_level == level
        ),
        f"ESCALATED to {level_name(level)}",
        12.0,
    )
