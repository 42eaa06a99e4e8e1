"""Guardian cases, server side (spec §15): notification streams, acknowledgement, escalation, and the
ward's location and track. They provision their worlds like the child-safety cases
(:func:`conformance.cases.child_safety.build_world`).

Escalation (GRD-003, GRD-009) is observed only when the target's step for TEST-mode notifications
is short enough for the suite's time budget (GRD-005 allows down to 5 s): the case reads the step
from the first notification's ``ack_deadline`` and is skipped when it exceeds 20 s. Not covered:
GRD-004/GRD-006/GRD-007 beyond the first rung (they need several steps and the emergency area),
GRD-018 (app role)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import guardian_pb2 as gd

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.child_safety import (
    DENIED,
    INVALID,
    NOT_FOUND,
    PROFILE,
    World,
    build_world,
    guardian_token,
    new_id,
    now,
)

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
