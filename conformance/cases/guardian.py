"""Guardian cases, server side (spec §15): notification streams, acknowledgement, escalation, and the
ward's location and track. They provision their worlds like the child-safety cases
(:func:`conformance.cases.child_safety.build_world`).

Escalation (GRD-003, GRD-009, and the upper rungs GRD-004, GRD-006, GRD-007) is observed only when
the target's step for TEST-mode notifications is short enough for the suite's time budget (GRD-005
allows down to 5 s): the cases read the step from the first notification's ``ack_deadline`` and are
skipped when the climb they need exceeds their limit. Not covered: GRD-018 (app role)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import emergency_pb2 as E
from ansim.v1 import guardian_pb2 as gd
from ansim.v1.common_pb2 import AGENCY_KIND_POLICE_112

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.child_safety import (
    DENIED,
    INVALID,
    MIDNIGHT_WAIT_S,
    NOT_FOUND,
    PROFILE,
    TEST_LATENCY_S,
    World,
    build_world,
    expect_arrivals_missed,
    guardian_token,
    new_id,
    now,
    sleep_until,
)
from conformance.cases.emergency import Stream, dispatches_of, operator, operator_get
from conformance.expect import fail

MAX_STEP_S = 20.0


async def sos(world: World) -> gd.Notification:
    """Press the ward's tag button; return the guardian's SOS copy."""
    await world.submit(world.event(world.street, cs.TAG_EVENT_KIND_BUTTON_PRESS, uid=world.tag.uid))
    found = await world.wait_for(cs.DERIVED_EVENT_KIND_SOS)
    check(len(found) == 1, f"expected one SOS notification for the button press, got {len(found)} [TAG-016]")
    return found[0]


def track_request(world: World, **fields: Any) -> gd.ListWardTrackRequest:
    request = gd.ListWardTrackRequest(ward=world.ward.name, **fields)
    request.start_time.FromDatetime(now() - timedelta(hours=1))
    request.end_time.FromDatetime(now() + timedelta(minutes=5))
    return request


@case(
    "TC_GRD_001_SRV",
    title=(
        "A fresh stream replays unacknowledged EMERGENCY copies first "
        "(replay=true), then live events in sequence"
    ),
    requirements=["GRD-011", "GRD-012", "STM-001", "GRD-001"],
    profile=PROFILE,
    kind="positive",
)
async def stream_replay(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    first = await sos(world)
    call = world.guardians().StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian))
    replayed = await ctx.read_stream(call, 1)
    check(len(replayed) == 1, "a fresh stream must first replay the unacknowledged SOS [GRD-011]")
    check(
        replayed[0].replay and replayed[0].change == gd.NOTIFICATION_CHANGE_CREATED,
        f"the replayed event must have replay=true and change CREATED, got {replayed[0]}",
    )
    check(replayed[0].notification.name == first.name, "the replayed copy must be the unacknowledged SOS")
    check(
        bool(replayed[0].cursor) and replayed[0].sequence >= 1,
        "every event needs a cursor and a sequence [STM-001]",
    )
    await world.submit(world.sighting(world.gate, direction=cs.SIGHTING_DIRECTION_INBOUND))
    live = await ctx.read_stream(call, 1, wait_s=7)
    call.cancel()
    check(
        len(live) == 1, "the ARRIVED_SCHOOL notification did not reach the open stream within 7 s [GRD-001]"
    )
    check(
        not live[0].replay and live[0].change == gd.NOTIFICATION_CHANGE_CREATED,
        "a live event has replay=false",
    )
    check(
        live[0].notification.event_kind == cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL,
        f"expected the live ARRIVED_SCHOOL, got {cs.DerivedEventKind.Name(live[0].notification.event_kind)}",
    )
    check(live[0].sequence == replayed[0].sequence + 1, "sequences must increase by exactly one [STM-001]")


@case(
    "TC_GRD_002_SRV",
    title="Resuming a stream from a cursor delivers the later events in order without a gap",
    requirements=["GRD-012", "STM-002"],
    profile=PROFILE,
    kind="positive",
)
async def stream_resume(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    first = await sos(world)
    stub = world.guardians()
    call = stub.StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian))
    (replayed,) = await ctx.read_stream(call, 1) or [gd.StreamNotificationsResponse()]
    call.cancel()
    check(bool(replayed.cursor), "no replayed event to take a cursor from [GRD-011]")
    await expect_ok(
        stub.AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=first.name, request_id=ctx.request_id())
        )
    )
    await world.submit(world.sighting(world.gate, direction=cs.SIGHTING_DIRECTION_INBOUND))
    await world.wait_for(cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL)
    resumed = stub.StreamNotifications(
        gd.StreamNotificationsRequest(parent=world.guardian, resume_cursor=replayed.cursor)
    )
    events = await ctx.read_stream(resumed, 2)
    resumed.cancel()
    check(
        len(events) == 2,
        f"expected the ACKNOWLEDGED and CREATED events after the cursor, got {len(events)} [STM-002]",
    )
    check(
        [e.sequence for e in events] == [replayed.sequence + 1, replayed.sequence + 2],
        f"resumed sequences {[e.sequence for e in events]} do not follow {replayed.sequence} [STM-002]",
    )
    check(
        events[0].change == gd.NOTIFICATION_CHANGE_ACKNOWLEDGED,
        "the first later event is the acknowledgement",
    )
    check(
        events[1].notification.event_kind == cs.DERIVED_EVENT_KIND_ARRIVED_SCHOOL,
        "the second is ARRIVED_SCHOOL",
    )


@case(
    "TC_GRD_003_SRV",
    title="A resume cursor of another recipient's stream or not issued by the center is CURSOR_INVALID",
    requirements=["STM-003", "GRD-012"],
    profile=PROFILE,
    kind="negative",
)
async def stream_bad_cursor(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    await sos(world)
    call = world.guardians().StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian))
    (event,) = await ctx.read_stream(call, 1) or [gd.StreamNotificationsResponse()]
    call.cancel()
    check(bool(event.cursor), "no replayed event to take a cursor from [GRD-011]")
    other_id = new_id(ctx, "other")
    other = world.guardians(guardian_token(ctx, other_id))
    for cursor in (event.cursor, "bm90LWEtY3Vyc29y"):
        stream = other.StreamNotifications(
            gd.StreamNotificationsRequest(parent=f"{world.center}/guardians/{other_id}", resume_cursor=cursor)
        )

        async def first(s: Any = stream) -> Any:
            async for item in s:
                return item
            return None

        await expect_error(
            first(), code=INVALID, reason="CURSOR_INVALID", what=f"resume with cursor {cursor[:12]}…"
        )


@case(
    "TC_GRD_004_SRV",
    title=(
        "Streams and lists of another recipient: NOT_OWNER for a guardian, "
        "and for an operator outside guardians/operators"
    ),
    requirements=["GRD-013", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def stream_not_owner(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    other = world.guardians(guardian_token(ctx, new_id(ctx, "other")))
    operator = world.guardians(role="CENTER_OPERATOR", token=ctx.tokens.token("CENTER_OPERATOR"))
    for stub in (other, operator):
        await expect_error(
            stub.ListNotifications(gd.ListNotificationsRequest(parent=world.guardian)),
            code=DENIED,
            reason="NOT_OWNER",
        )
        stream = stub.StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian))

        async def first(s: Any = stream) -> Any:
            async for item in s:
                return item
            return None

        await expect_error(
            first(), code=DENIED, reason="NOT_OWNER", what="StreamNotifications of another recipient"
        )
    await expect_ok(
        operator.ListNotifications(gd.ListNotificationsRequest(parent=f"{world.center}/guardians/operators")),
        "ListNotifications of guardians/operators by an operator",
    )


@case(
    "TC_GRD_005_SRV",
    title=(
        "Get/AcknowledgeNotification of another guardian's copy is "
        "NOT_OWNER and changes nothing; unknown is NOT_FOUND"
    ),
    requirements=["GRD-010"],
    profile=PROFILE,
    kind="negative",
)
async def notification_not_owner(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    mine = await sos(world)
    other = world.guardians(guardian_token(ctx, new_id(ctx, "other")))
    await expect_error(
        other.GetNotification(gd.GetNotificationRequest(name=mine.name)), code=DENIED, reason="NOT_OWNER"
    )
    await expect_error(
        other.AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=mine.name, request_id=ctx.request_id())
        ),
        code=DENIED,
        reason="NOT_OWNER",
    )
    still = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=mine.name)))
    check(not still.HasField("acknowledged_by"), "a refused acknowledgement must change nothing [GRD-010]")
    await expect_error(
        world.guardians().GetNotification(
            gd.GetNotificationRequest(name=f"{world.guardian}/notifications/{new_id(ctx, 'n')}")
        ),
        code=NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
    )


@case(
    "TC_GRD_006_SRV",
    title=(
        "An effective acknowledgement sets acknowledged_by on every copy, "
        "clears ack_deadline; a repeat changes nothing"
    ),
    requirements=["GRD-008", "IDM-002"],
    profile=PROFILE,
    kind="positive",
)
async def acknowledge(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    mine = await sos(world)
    stub = world.guardians()
    request = gd.AcknowledgeNotificationRequest(
        name=mine.name, note="확인했습니다", request_id=ctx.request_id()
    )
    acked = await expect_ok(stub.AcknowledgeNotification(request))
    check(
        acked.acknowledged_by.id == f"guardians/{world.guardian_id}",
        f"acknowledged_by is {acked.acknowledged_by.id!r} [GRD-008]",
    )
    check(
        acked.HasField("acknowledge_time") and not acked.HasField("ack_deadline"),
        "ack time set, deadline cleared [GRD-008]",
    )
    retry = await expect_ok(stub.AcknowledgeNotification(request), "the retried acknowledgement")
    check(retry == acked, "a retried acknowledgement must return the same copy [IDM-002]")
    other = await expect_ok(
        stub.AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=mine.name, request_id=ctx.request_id())
        )
    )
    check(
        other.acknowledge_time == acked.acknowledge_time,
        "acknowledging an acknowledged copy must change nothing [GRD-008]",
    )


@case(
    "TC_GRD_007_SRV",
    title=(
        "An unacknowledged EMERGENCY escalates at its deadline to the school "
        "contact; the guardian's late ack is ACK_TOO_LATE"
    ),
    requirements=["GRD-003", "GRD-009", "GRD-005"],
    profile=PROFILE,
    kind="negative",
    timeout=45,
)
async def escalation(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    mine = await sos(world)
    check(mine.HasField("ack_deadline"), "an EMERGENCY notification needs ack_deadline [GRD-002]")
    step = (mine.ack_deadline.ToDatetime() - mine.create_time.ToDatetime()).total_seconds()
    if step > MAX_STEP_S:
        ctx.skip(f"the TEST-mode escalation step is {step:.0f} s; the suite waits at most {MAX_STEP_S:.0f} s")
    contact = world.contact_token()
    copies: list[gd.Notification] = []
    for _ in range(int(step) + 10):
        await asyncio.sleep(1)
        copies = await world.wait_for(
            cs.DERIVED_EVENT_KIND_SOS, token=contact, recipient=world.contact, wait_s=0
        )
        if copies:
            break
    check(
        len(copies) == 1,
        f"the school contact got no SOS copy within {step + 10:.0f} s of the deadline [GRD-003]",
    )
    check(
        copies[0].recipient_level == gd.ESCALATION_LEVEL_SCHOOL,
        "the contact's copy must be at the SCHOOL rung",
    )
    moved = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=mine.name)))
    check(
        moved.escalation_level == gd.ESCALATION_LEVEL_SCHOOL,
        "the guardian's copy must show escalation_level SCHOOL",
    )
    check(moved.HasField("escalate_time"), "an escalated copy has escalate_time [GRD-003]")
    await expect_error(
        world.guardians().AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=mine.name, request_id=ctx.request_id())
        ),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="ACK_TOO_LATE",
    )
    late = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=mine.name)))
    check(len(late.late_acknowledgements) == 1, "the late acknowledgement must be recorded [GRD-009]")
    check(
        not late.HasField("acknowledged_by"), "a late acknowledgement must not stop the escalation [GRD-009]"
    )
    acked = await expect_ok(
        world.guardians(contact).AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=copies[0].name, request_id=ctx.request_id())
        ),
        "the school contact's acknowledgement",
    )
    check(
        acked.acknowledged_by.id == f"guardians/{world.contact_id}",
        "the school contact's ack is effective [GRD-008]",
    )


@case(
    "TC_GRD_008_SRV",
    title=(
        "Ward location and track: another guardian and an operator without an "
        "emergency get NOT_OWNER, an auditor ROLE_NOT_PERMITTED"
    ),
    requirements=["GRD-014", "SEC-010", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def location_not_owner(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    other = world.guardians(guardian_token(ctx, new_id(ctx, "other")))
    operator = world.guardians(role="CENTER_OPERATOR", token=ctx.tokens.token("CENTER_OPERATOR"))
    for stub in (other, operator):
        await expect_error(
            stub.GetWardLocation(gd.GetWardLocationRequest(ward=world.ward.name)),
            code=DENIED,
            reason="NOT_OWNER",
        )
        await expect_error(stub.ListWardTrack(track_request(world)), code=DENIED, reason="NOT_OWNER")
    auditor = world.guardians(role="AUDITOR", token=ctx.tokens.token("AUDITOR"))
    await expect_error(
        auditor.GetWardLocation(gd.GetWardLocationRequest(ward=world.ward.name)),
        code=DENIED,
        reason="ROLE_NOT_PERMITTED",
    )


@case(
    "TC_GRD_009_SRV",
    title=(
        "GetWardLocation returns the sighting with the latest "
        "observed_time (not the latest received) as a TAG_READER fix"
    ),
    requirements=["GRD-016"],
    profile=PROFILE,
    kind="positive",
)
async def ward_location(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    stub = world.guardians()
    empty = await expect_ok(stub.GetWardLocation(gd.GetWardLocationRequest(ward=world.ward.name)))
    check(
        empty.ward == world.ward.name and not empty.reader, "without sightings only `ward` is set [GRD-016]"
    )
    t = now() - timedelta(seconds=60)
    await world.submit(world.sighting(world.street, t + timedelta(seconds=30)))
    await world.submit(world.sighting(world.home_reader, t))  # received later, observed earlier
    where = await expect_ok(stub.GetWardLocation(gd.GetWardLocationRequest(ward=world.ward.name)))
    check(
        where.reader == world.street.name,
        f"expected the street reader (latest observed), got {where.reader!r} [GRD-016]",
    )
    check(where.reader_kind == cs.READER_KIND_STREET, "reader_kind must be the reader's kind")
    loc = where.location
    check(
        abs(loc.latitude - world.street.location.latitude) < 1e-9 and loc.method == 5,
        f"the location must be the reader's position with method TAG_READER, got {loc}",
    )
    check(
        abs((loc.fix_time.ToDatetime() - where.observed_time.ToDatetime()).total_seconds()) < 0.001,
        "fix_time must be the observed time [GRD-016]",
    )


@case(
    "TC_GRD_010_SRV",
    title=(
        "ListWardTrack lists the window's sightings oldest first, "
        "paginated; a window before retention is empty"
    ),
    requirements=["GRD-017", "GRD-015"],
    profile=PROFILE,
    kind="positive",
)
async def ward_track(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    t = now() - timedelta(minutes=2)
    times = [t + timedelta(seconds=s) for s in (40, 0, 20)]
    for observed in times:
        await world.submit(world.sighting(world.street, observed))
    stub = world.guardians()
    request = track_request(world, page_size=2)
    first = await expect_ok(stub.ListWardTrack(request))
    check(
        len(first.track_points) == 2 and first.next_page_token,
        "page 1 must hold 2 points and a next_page_token",
    )
    request.page_token = first.next_page_token
    rest = await expect_ok(stub.ListWardTrack(request))
    points = [*first.track_points, *rest.track_points]
    got = [p.observed_time.ToDatetime() for p in points]
    check(
        len(got) == 3 and got == sorted(got),
        f"expected 3 points ascending by observed_time, got {got} [GRD-017]",
    )
    old = gd.ListWardTrackRequest(ward=world.ward.name)
    old.start_time.FromDatetime(now() - timedelta(days=400))
    old.end_time.FromDatetime(now() - timedelta(days=399))
    before = await expect_ok(stub.ListWardTrack(old), "ListWardTrack of a window before retention")
    check(not before.track_points, "a window wholly before the retention period must be empty [GRD-017]")


@case(
    "TC_GRD_011_SRV",
    title=(
        "ListWardTrack with end_time not after start_time is "
        "INVALID_FIELD; a foreign page_token is PAGE_TOKEN_INVALID"
    ),
    requirements=["GRD-017"],
    profile=PROFILE,
    kind="negative",
)
async def track_invalid(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    stub = world.guardians()
    request = gd.ListWardTrackRequest(ward=world.ward.name)
    request.start_time.FromDatetime(now())
    request.end_time.FromDatetime(now() - timedelta(hours=1))
    await expect_error(stub.ListWardTrack(request), code=INVALID, reason="INVALID_FIELD")
    await expect_error(
        stub.ListWardTrack(track_request(world, page_token="bm90LWEtdG9rZW4")),
        code=INVALID,
        reason="PAGE_TOKEN_INVALID",
    )


# --- the upper rungs (GRD-004, GRD-006, GRD-007) ---------------------------------------------------------

#: The longest climb (from creation to the last rung checked, plus one more step) the suite waits for.
MAX_CLIMB_S = 32.0
#: GRD-003: a rung is reached within 5 s of the deadline; the suite allows network slack.
RUNG_LATENCY_S = 5.0 + 2.0


def step_of(copy: gd.Notification) -> float:
    """The escalation step as the wire shows it: ack_deadline minus create_time (GRD-002, GRD-005)."""
    check(copy.HasField("ack_deadline"), "a WARNING or EMERGENCY notification needs ack_deadline [GRD-002]")
    return (copy.ack_deadline.ToDatetime() - copy.create_time.ToDatetime()).total_seconds()


async def reach(
    world: World, copy: gd.Notification, level: gd.EscalationLevel.ValueType, by: datetime
) -> gd.Notification:
    """Poll the guardian's copy until it is at ``level``; fail after ``by`` (UTC)."""
    stub = world.guardians()
    while True:
        got: gd.Notification = await expect_ok(
            stub.GetNotification(gd.GetNotificationRequest(name=copy.name))
        )
        if got.escalation_level >= level or now() > by:
            check(
                got.escalation_level == level,
                f"the notification is at {gd.EscalationLevel.Name(got.escalation_level)} at "
                f"{now().isoformat()}, expected {gd.EscalationLevel.Name(level)} by {by.isoformat()} "
                "[GRD-003]",
            )
            return got
        await asyncio.sleep(0.5)


async def operators_copy(world: World, derived_event_id: str) -> gd.Notification | None:
    operator = world.guardians(role="CENTER_OPERATOR", token=world.ctx.tokens.token("CENTER_OPERATOR"))
    response = await expect_ok(
        operator.ListNotifications(
            gd.ListNotificationsRequest(
                parent=f"{world.center}/guardians/operators", ward=world.ward.name, page_size=1000
            )
        ),
        "ListNotifications of guardians/operators by an operator",
    )
    found = [n for n in response.notifications if n.derived_event_id == derived_event_id]
    return found[0] if found else None


async def stays_at_top(
    world: World, copy: gd.Notification, top: gd.EscalationLevel.ValueType, step: float
) -> None:
    """One more step after the top rung: still there, no deadline, no new escalation [GRD-004]."""
    await asyncio.sleep(step + 2.0)
    after = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=copy.name)))
    check(
        after.escalation_level == top and not after.HasField("ack_deadline"),
        f"a {gd.NotificationSeverity.Name(copy.severity)} notification must stop at "
        f"{gd.EscalationLevel.Name(top)} without ack_deadline; it is at "
        f"{gd.EscalationLevel.Name(after.escalation_level)} [GRD-004]",
    )
    check(
        after.escalate_time == copy.escalate_time,
        "the notification escalated again at the top rung [GRD-004]",
    )


@case(
    "TC_GRD_012_SRV",
    title=(
        "An unacknowledged ENTERED_DANGER_ZONE reaches CENTER (operators' copy, a linked "
        "DANGER_ZONE_ENTRY emergency), then POLICE_112 (that emergency dispatched to 112), and no further"
    ),
    requirements=["GRD-006", "GRD-007", "GRD-004", "GRD-003"],
    profile=PROFILE,
    kind="positive",
    timeout=58,
)
async def danger_zone_ladder(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    stream = Stream(
        ctx, world.guardians().StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian))
    )
    at = now() - timedelta(seconds=1)
    await world.submit(
        world.sighting(world.street, at - timedelta(seconds=1)), world.sighting(world.street, at)
    )
    entered = await world.wait_for(cs.DERIVED_EVENT_KIND_ENTERED_DANGER_ZONE)
    check(
        len(entered) == 1,
        f"two in-zone sightings must derive ENTERED_DANGER_ZONE, got {len(entered)} [TAG-013]",
    )
    mine = entered[0]
    step = step_of(mine)
    if 4 * step + 2 > MAX_CLIMB_S:
        ctx.skip(
            f"the TEST-mode escalation step is {step:.0f} s: reaching POLICE_112 and one more step takes "
            f"{4 * step:.0f} s; the suite waits at most {MAX_CLIMB_S:.0f} s (GRD-005 allows 5 s for TEST)"
        )
    first = mine.ack_deadline.ToDatetime(tzinfo=UTC)
    pace = timedelta(seconds=RUNG_LATENCY_S)
    center = await reach(world, mine, gd.ESCALATION_LEVEL_CENTER, first + timedelta(seconds=step) + pace)
    copy = await operators_copy(world, mine.derived_event_id)
    check(copy is not None, "no operators' copy under guardians/operators at the CENTER rung [GRD-006]")
    assert copy is not None
    check(
        copy.recipient_level == gd.ESCALATION_LEVEL_CENTER,
        f"the operators' copy has recipient_level {gd.EscalationLevel.Name(copy.recipient_level)} [GRD-006]",
    )
    linked = center
    deadline = now() + pace
    while not linked.related_emergency and now() < deadline:
        await asyncio.sleep(0.5)
        linked = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=mine.name)))
    check(
        bool(linked.related_emergency),
        "no related_emergency on the guardian's copy at the CENTER rung [GRD-006]",
    )
    emergency = await operator_get(ctx, linked.related_emergency)
    ctx.on_cleanup(lambda: resolve(ctx, emergency.name))
    check(
        emergency.kind == E.EMERGENCY_KIND_DANGER_ZONE_ENTRY,
        f"the related emergency is of kind {E.EmergencyKind.Name(emergency.kind)} [GRD-006]",
    )
    check(
        emergency.mode == ctx.mode and emergency.ward == world.ward.name,
        "the emergency must have the notification's mode and ward [GRD-006]",
    )
    where = emergency.last_location
    check(
        abs(where.latitude - mine.location.latitude) < 1e-6
        and abs(where.longitude - mine.location.longitude) < 1e-6,
        "the emergency must be at the notification's location [GRD-006]",
    )
    link, _ = await stream.until(
        lambda ev: ev.change == gd.NOTIFICATION_CHANGE_EMERGENCY_LINKED and ev.notification.name == mine.name,
        RUNG_LATENCY_S,
        "the EMERGENCY_LINKED event on the guardian's stream [GRD-006]",
    )
    check(link.notification.related_emergency == emergency.name, "EMERGENCY_LINKED must carry the emergency")
    police = await reach(
        world, mine, gd.ESCALATION_LEVEL_POLICE_112, first + timedelta(seconds=2 * step) + pace
    )
    check(not police.HasField("ack_deadline"), "a notification at its top rung has no ack_deadline [GRD-003]")
    deadline = now() + pace
    while True:
        found = [
            d for d in await dispatches_of(ctx, emergency.name) if d.agency_kind == AGENCY_KIND_POLICE_112
        ]
        if found or now() > deadline:
            break
        await asyncio.sleep(0.5)
    check(bool(found), "the related emergency has no 112 dispatch at the POLICE_112 rung [GRD-007]")
    await stays_at_top(world, police, gd.ESCALATION_LEVEL_POLICE_112, step)


@case(
    "TC_GRD_013_SRV",
    title=(
        "An unacknowledged WARNING (missed arrival) climbs to CENTER with the operators' copy and stops "
        "there; an INFO notification never escalates"
    ),
    requirements=["GRD-004", "GRD-006", "GRD-003"],
    profile=PROFILE,
    kind="negative",
    timeout=58 + MIDNIGHT_WAIT_S,
)
async def warning_ceiling(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    inbound = cs.SIGHTING_DIRECTION_INBOUND
    await world.submit(world.sighting(world.academy_reader, now() - timedelta(seconds=1), inbound))
    info = await world.wait_for(cs.DERIVED_EVENT_KIND_ACADEMY_IN)
    check(len(info) == 1, f"an INBOUND academy sighting must derive ACADEMY_IN, got {len(info)} [TAG-011]")
    due = await expect_arrivals_missed(world, [world.school])
    await sleep_until(due)
    missed = await world.wait_for(cs.DERIVED_EVENT_KIND_MISSED_EXPECTED_ARRIVAL, wait_s=TEST_LATENCY_S)
    check(len(missed) == 1, f"expected one MISSED_EXPECTED_ARRIVAL, got {len(missed)} [TAG-015, TAG-023]")
    mine = missed[0]
    step = step_of(mine)
    if 3 * step + 2 > MAX_CLIMB_S:
        ctx.skip(
            f"the TEST-mode escalation step is {step:.0f} s: reaching CENTER and one more step takes "
            f"{3 * step:.0f} s; the suite waits at most {MAX_CLIMB_S:.0f} s (GRD-005 allows 5 s for TEST)"
        )
    first = mine.ack_deadline.ToDatetime(tzinfo=UTC)
    center = await reach(
        world, mine, gd.ESCALATION_LEVEL_CENTER, first + timedelta(seconds=step + RUNG_LATENCY_S)
    )
    check(
        not center.HasField("ack_deadline"),
        "a WARNING at CENTER, its top rung, has no ack_deadline [GRD-003]",
    )
    copy = await operators_copy(world, mine.derived_event_id)
    check(
        copy is not None and copy.recipient_level == gd.ESCALATION_LEVEL_CENTER,
        "no operators' copy with recipient_level CENTER at the CENTER rung [GRD-006]",
    )
    await stays_at_top(world, center, gd.ESCALATION_LEVEL_CENTER, step)
    home = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=info[0].name)))
    check(
        home.escalation_level == gd.ESCALATION_LEVEL_GUARDIAN
        and not home.HasField("escalate_time")
        and not home.HasField("ack_deadline"),
        "an INFO notification must never escalate [GRD-004]",
    )
    school = await world.wait_for(
        cs.DERIVED_EVENT_KIND_ACADEMY_IN, token=world.contact_token(), recipient=world.contact, wait_s=0
    )
    check(not school, "the school contact got a copy of an INFO notification [GRD-004]")
    await expect_ok(
        world.guardians(
            role="CENTER_OPERATOR", token=ctx.tokens.token("CENTER_OPERATOR")
        ).AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=copy.name if copy else "", request_id=ctx.request_id())
        ),
        "the operator's acknowledgement at the CENTER rung",
    )


async def resolve(ctx: CaseContext, name: str) -> None:
    """Clean-up: an operator resolves the danger-zone emergency (its dispatches close)."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        await operator(ctx).UpdateEmergencyState(
            E.UpdateEmergencyStateRequest(
                name=name,
                request_id=ctx.request_id(),
                state=E.EMERGENCY_STATE_RESOLVED,
                note="conformance clean-up",
            )
        )


@case(
    "TC_GRD_014_SRV",
    title=(
        "An EMERGENCY at its top rung POLICE_112 is closed by the operators' acknowledgement (the "
        "guardian's is still ACK_TOO_LATE): acknowledged_by on every copy, no replay on a fresh stream"
    ),
    requirements=["GRD-008", "GRD-009", "GRD-011"],
    profile=PROFILE,
    kind="positive",
    timeout=45,
)
async def operator_ack_at_police(ctx: CaseContext) -> None:
    world = await build_world(ctx)
    mine = await sos(world)
    step = step_of(mine)
    if 3 * step + 2 > MAX_CLIMB_S:
        ctx.skip(
            f"the TEST-mode escalation step is {step:.0f} s: reaching POLICE_112 takes {3 * step:.0f} s; "
            f"the suite waits at most {MAX_CLIMB_S:.0f} s (GRD-005 allows 5 s for TEST)"
        )
    first = mine.ack_deadline.ToDatetime(tzinfo=UTC)
    top = first + timedelta(seconds=2 * step + RUNG_LATENCY_S)
    police = await reach(world, mine, gd.ESCALATION_LEVEL_POLICE_112, top)
    if police.related_emergency:
        ctx.on_cleanup(lambda: resolve(ctx, police.related_emergency))
    await expect_error(
        world.guardians().AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=mine.name, request_id=ctx.request_id())
        ),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="ACK_TOO_LATE",
    )
    ours = await operators_copy(world, mine.derived_event_id)
    check(ours is not None, "no operators' copy of the SOS at the POLICE_112 rung [GRD-006]")
    assert ours is not None
    operators = world.guardians(role="CENTER_OPERATOR", token=ctx.tokens.token("CENTER_OPERATOR"))
    acked = await expect_ok(
        operators.AcknowledgeNotification(
            gd.AcknowledgeNotificationRequest(name=ours.name, request_id=ctx.request_id())
        ),
        "the operator's acknowledgement at the POLICE_112 rung [GRD-008]",
    )
    check(
        acked.HasField("acknowledged_by") and acked.HasField("acknowledge_time"),
        "the operator's acknowledgement at POLICE_112 must be effective [GRD-008]",
    )
    check(not acked.HasField("ack_deadline"), "an acknowledged copy has no ack_deadline [GRD-008]")
    contact = world.contact_token()
    school = await world.wait_for(cs.DERIVED_EVENT_KIND_SOS, token=contact, recipient=world.contact, wait_s=0)
    check(len(school) == 1, f"the school contact has {len(school)} SOS copies, expected 1 [GRD-003]")
    guardian = await expect_ok(world.guardians().GetNotification(gd.GetNotificationRequest(name=mine.name)))
    for who, copy in (("guardian", guardian), ("school contact", school[0])):
        check(
            copy.acknowledged_by == acked.acknowledged_by and copy.acknowledge_time == acked.acknowledge_time,
            f"the {who}'s copy does not show the operator's acknowledgement [GRD-008]",
        )
    check(
        len(guardian.late_acknowledgements) == 1,
        "the guardian's late acknowledgement must stay recorded [GRD-009]",
    )
    stream = Stream(
        ctx, world.guardians().StreamNotifications(gd.StreamNotificationsRequest(parent=world.guardian))
    )
    before = await until_live(world, stream)
    check(
        not [ev for ev in before if ev.replay and ev.notification.derived_event_id == mine.derived_event_id],
        "a fresh stream replayed the SOS the operator acknowledged at POLICE_112 [GRD-011]",
    )


async def until_live(world: World, stream: Stream, attempts: int = 4) -> list[gd.StreamNotificationsResponse]:
    """Walk the ward in and out of the school gate until the fresh ``stream`` carries a live event
    (one published before the subscription took effect is not on it, GRD-012); return the events
    before it — the replay of GRD-011."""
    replayed: list[gd.StreamNotificationsResponse] = []
    for attempt in range(attempts):
        inbound = attempt % 2 == 0
        direction = cs.SIGHTING_DIRECTION_INBOUND if inbound else cs.SIGHTING_DIRECTION_OUTBOUND
        await world.submit(world.sighting(world.gate, direction=direction))
        while (event := await stream.poll(2.0)) is not None:
            if not event.replay:
                return replayed
            replayed.append(event)
    fail(f"no live event on a fresh stream after {attempts} school-gate sightings [GRD-001, GRD-012]")
    return replayed
