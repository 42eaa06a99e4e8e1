"""Demo scenario: an emergency bell pressed in 안양 (EXERCISE mode).

The operator registers a bell pole in a school's safe zone with a school contact; the bell gateway
sends BELL_PRESS (IngestTagEvents). The center raises an EMERGENCY_BELL emergency at the pole,
dispatched to its police (gyeonggi-south-112) without an operator, notifies the school contact at
the SCHOOL rung (TAG-017); the officer acknowledges over mutual TLS (DISPATCHED) and the school
contact acknowledges her notification."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, emergency_pb2
from ansim.v1 import guardian_pb2 as gd

from reference_server.demo.console import tls_channel, token
from reference_server.demo.local_support import (
    Background,
    CenterClient,
    Gateway,
    checked,
    circle,
    dispatched_to,
    kind_name,
    level_name,
    require,
)

if TYPE_CHECKING:
    from reference_server.demo.runner import Demo

ANYANG_BELL = (37.4016, 126.9229)  # 안양 만안구
GATEWAY = "gateways/anyang-bells"  # the bell poles' gateway (token subject)
TEACHER = "teacher-park"  # the school contact of the pole's safe zone


async def bell(demo: Demo) -> str:
    client = CenterClient(demo, "anyang")
    stream = client.notifications(TEACHER)  # the school contact's app, open before the press
    gateway = Gateway(client, GATEWAY, common_pb2.MODE_EXERCISE)
    try:
        return await _press(demo, client, gateway, stream)
    finally:
        stream.stop()
        await gateway.close()
        await client.close()


async def _press(
    demo: Demo, client: CenterClient, gateway: Gateway, stream: Background[gd.StreamNotificationsResponse]
) -> str:
    """Register the pole, press it, follow the emergency to DISPATCHED [TAG-017]."""
    c = where = client.center
    await client.create(
        "zones",
        "central-school-safe",
        cs.Zone(
            kind=cs.ZONE_KIND_SAFE_ZONE,
            display_name="안양 중앙초 안심구역",
            area=circle(*ANYANG_BELL, 150),
            school_contacts=[f"{c}/guardians/{TEACHER}"],
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
            gateway=GATEWAY,
            active=True,
        ),
    )
    demo.timeline.add(where, "operator", f"registered bell pole {reader.name} (school contact {TEACHER})")
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
            e.notification.event_kind == cs.DERIVED_EVENT_KIND_BELL and bool(e.notification.related_emergency)
        ),
        "the BELL notification with its emergency",
    )
    note = notice.notification
    school = note.recipient_level == gd.ESCALATION_LEVEL_SCHOOL
    checked(
        demo,
        where,
        "school contact",
        f"StreamNotifications: BELL ({note.zone_display_name}) at {level_name(note.recipient_level)},"
        f" related {note.related_emergency}",
        began,
        ok=school,
        failure=f"the school contact's copy is at {level_name(note.recipient_level)}",
    )
    require(not ack.emergency or ack.emergency == note.related_emergency, "ack and notification differ")
    seen = await client.dispatched(note.related_emergency)
    agencies = dispatched_to(seen)
    right = (
        seen.kind == emergency_pb2.EMERGENCY_KIND_EMERGENCY_BELL
        and seen.reader == reader.name
        and seen.handling_center == c
        and agencies == ["agencies/gyeonggi-south-112"]
    )
    checked(
        demo,
        where,
        "emergency",
        f"{seen.name} EMERGENCY_BELL at the pole, handled here, dispatched to {', '.join(agencies)}",
        began,
        ok=right,
        failure=f"bell emergency {seen.kind} at {seen.handling_center} dispatched to {agencies}",
    )
    await _officer_acknowledges(demo, client, seen)
    dispatched = await _state(client, seen.name, emergency_pb2.EMERGENCY_STATE_DISPATCHED)
    demo.timeline.add(
        where, "emergency", f"{dispatched.name} → DISPATCHED", (time.monotonic() - began) * 1000
    )
    acked = await client.guardians.AcknowledgeNotification(
        gd.AcknowledgeNotificationRequest(name=note.name, request_id=str(uuid.uuid4()), note="현장 확인 중"),
        metadata=client.guardian(TEACHER),
        timeout=3,
    )
    require(acked.HasField("acknowledged_by"), "the school contact's acknowledgement was not effective")
    demo.timeline.add(where, "school contact", "AcknowledgeNotification (SCHOOL rung) → ACKNOWLEDGED")
    return "EMERGENCY_BELL at anyang, gyeonggi-south-112 acknowledged (DISPATCHED), school contact notified"


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
