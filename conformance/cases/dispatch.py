"""Conformance cases of DispatchService (spec §13) for the center-core profile.

Dispatches come from TEST-mode emergencies raised by the cases (conformance/cases/emergency.py);
the subscriptions are TEST (or EXERCISE, to show mode isolation) subscriptions of the fixture's
police agency. Other cases run at the same time and add dispatches to the same scope, so a case
looks for its own dispatch among the events and checks sequences over everything it received.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from ansim.v1 import common_pb2, dispatch_pb2
from google.protobuf import duration_pb2

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.emergency import (
    CIVIC,
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    PERMISSION_DENIED,
    PROFILE,
    Reporter,
    Stream,
    dispatches,
    fire_agency,
    police_agency,
    police_dispatch,
    to_dt,
    where,
)
from conformance.expect import fail

D = dispatch_pb2
T = D.DispatchEventType


#: A case that waits for dispatch deadlines is skipped when the wait exceeds this [DSP-005].
MAX_DEADLINE_WAIT_S = 30.0


def ack_interval(d: D.Dispatch) -> float:
    """The dispatch's acknowledgement interval as the wire shows it: 30 s, or for TEST mode the
    deployment's 5-30 s (ack_deadline minus create_time) [DSP-005]."""
    interval = (to_dt(d.ack_deadline) - to_dt(d.create_time)).total_seconds()
    check(
        interval == 30 or (d.mode == common_pb2.MODE_TEST and 5 <= interval <= 30),
        f"ack_deadline is create_time + {interval} s; expected 30 s (TEST mode: 5-30 s) [DSP-005]",
    )
    return interval


def subscribe(ctx: CaseContext, role: str = "POLICE_OFFICER", **fields: Any) -> Stream:
    request = D.SubscribeDispatchesRequest(parent=ctx.center(), agency=police_agency(ctx), mode=ctx.mode)
    for key, value in fields.items():
        if isinstance(value, list):
            getattr(request, key).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(request, key).CopyFrom(value)
        else:
            setattr(request, key, value)
    return Stream(ctx, dispatches(ctx, role).SubscribeDispatches(request))


async def replay(stream: Stream) -> list[D.DispatchEvent]:
    """Every event up to and including REPLAY_COMPLETE."""
    done, before = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE, 10.0, "REPLAY_COMPLETE"
    )
    return [*before, done]


def contiguous(events: list[D.DispatchEvent], start: int) -> bool:
    return [ev.sequence for ev in events] == list(range(start, start + len(events)))


async def expect_stream_error(stream: Stream, code: grpc.StatusCode, reason: str, what: str) -> None:
    async def wait() -> None:
        error = await stream.end(10.0)
        if error is not None:
            raise error

    await expect_error(wait(), code=code, reason=reason, what=what)


@case(
    "TC_DSP_001_SRV",
    title="A new subscription replays open dispatches, then REPLAY_COMPLETE, then live events, from 1",
    requirements=["DSP-014", "DSP-013", "DSP-001", "STM-001"],
    profile=PROFILE,
    kind="positive",
)
async def replay_then_live(ctx: CaseContext) -> None:
    before = await Reporter.new(ctx).raise_()
    open_dispatch = await police_dispatch(ctx, before.name)
    stream = subscribe(ctx)
    replayed = await replay(stream)
    check(
        contiguous(replayed, 1),
        f"replay sequences {[e.sequence for e in replayed]} do not start at 1 without gaps",
    )
    check(
        all(ev.replay and ev.cursor for ev in replayed),
        "a replay event lacks replay=true or a cursor [DSP-014]",
    )
    snapshots = [ev for ev in replayed[:-1]]
    check(
        all(ev.type == T.DISPATCH_EVENT_TYPE_SNAPSHOT for ev in snapshots),
        "the replay holds events other than SNAPSHOT",
    )
    check(not replayed[-1].HasField("dispatch"), "REPLAY_COMPLETE carries a dispatch")
    check(
        any(ev.dispatch.name == open_dispatch.name for ev in snapshots),
        "the open dispatch was not replayed [DSP-014]",
    )
    keys = [(to_dt(ev.dispatch.create_time), ev.dispatch.name) for ev in snapshots]
    check(keys == sorted(keys), "the replay is not in ascending create_time, name order [DSP-014]")
    after = await Reporter.new(ctx).raise_()
    created, between = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == after.name,
        5.0,
        "the CREATED event of a new emergency's dispatch [DSP-001]",
    )
    live = [*between, created]
    check(
        contiguous(live, replayed[-1].sequence + 1),
        "live events do not continue the replay's sequence [DSP-013]",
    )
    check(all(not ev.replay for ev in live), "a live event has replay=true")
    check(created.dispatch.state == D.DISPATCH_STATE_PENDING, "a CREATED dispatch is not PENDING")


@case(
    "TC_DSP_002_SRV",
    title="Resuming from a replay cursor and from a live cursor continues the scope without gaps",
    requirements=["DSP-021", "STM-002", "DSP-013"],
    profile=PROFILE,
    kind="positive",
)
async def resume_without_gaps(ctx: CaseContext) -> None:
    await police_dispatch(ctx, (await Reporter.new(ctx).raise_()).name)
    stream = subscribe(ctx)
    replayed = await replay(stream)
    await stream.close()
    emergency = await Reporter.new(ctx).raise_()
    resumed = subscribe(ctx, resume_cursor=replayed[0].cursor)
    created, between = await resumed.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == emergency.name,
        5.0,
        "the CREATED event after resuming",
    )
    got = [*between, created]
    check(
        contiguous(got, replayed[0].sequence + 1),
        f"after resuming, sequences {[e.sequence for e in got]} have a gap",
    )
    check(
        got[: len(replayed) - 1] == replayed[1:],
        "resuming in the replay did not deliver the rest of the replay again",
    )
    await resumed.close()
    dispatch = created.dispatch
    await expect_ok(
        dispatches(ctx).AcknowledgeDispatch(
            D.AcknowledgeDispatchRequest(name=dispatch.name, request_id=ctx.request_id(), unit_id="u-1")
        ),
        "AcknowledgeDispatch while disconnected",
    )
    again = subscribe(ctx, resume_cursor=created.cursor)
    acked, between = await again.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_ACKNOWLEDGED and ev.dispatch.name == dispatch.name,
        5.0,
        "the ACKNOWLEDGED event missed while disconnected",
    )
    check(contiguous([*between, acked], created.sequence + 1), "the second resumption has a gap [STM-002]")


@case(
    "TC_DSP_003_SRV",
    title="A cursor used with another mode or agency, or a forged one, is CURSOR_INVALID",
    requirements=["DSP-021", "STM-003"],
    profile=PROFILE,
    kind="negative",
)
async def cursor_bound_to_scope(ctx: CaseContext) -> None:
    stream = subscribe(ctx)
    replayed = await replay(stream)
    await stream.close()
    cursor = replayed[-1].cursor
    for what, fields in (
        ("another mode", {"mode": common_pb2.MODE_EXERCISE, "resume_cursor": cursor}),
        ("a region filter", {"sigungu_codes": ["11110"], "resume_cursor": cursor}),
        ("a forged cursor", {"resume_cursor": "Zm9yZ2VkLWN1cnNvcg"}),
    ):
        await expect_stream_error(
            subscribe(ctx, **fields), INVALID_ARGUMENT, "CURSOR_INVALID", f"SubscribeDispatches with {what}"
        )


@case(
    "TC_DSP_004_SRV",
    title="A TEST dispatch reaches the TEST subscription and never one of another mode",
    requirements=["DSP-015", "GEN-011", "EMG-029"],
    profile=PROFILE,
    kind="negative",
)
async def mode_isolation(ctx: CaseContext) -> None:
    test = subscribe(ctx)
    exercise = subscribe(ctx, mode=common_pb2.MODE_EXERCISE)
    await replay(test)
    await replay(exercise)
    emergency = await Reporter.new(ctx).raise_()
    await test.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == emergency.name,
        5.0,
        "the TEST dispatch on the TEST subscription",
    )
    await asyncio.sleep(1.0)
    leaked = []
    while not exercise.queue.empty():
        event = exercise.queue.get_nowait()
        if (
            event is not None
            and event.HasField("dispatch")
            and event.dispatch.mode != common_pb2.MODE_EXERCISE
        ):
            leaked.append(event.dispatch.name)
    check(not leaked, f"an EXERCISE subscription received dispatches of another mode: {leaked} [GEN-011]")


@case(
    "TC_DSP_005_SRV",
    title="AcknowledgeDispatch sets unit, eta and acknowledger; a second ack is refused, a retry replays",
    requirements=["DSP-008", "DSP-009", "DSP-005", "IDM-002"],
    profile=PROFILE,
    kind="negative",
)
async def acknowledge(ctx: CaseContext) -> None:
    dispatch = await police_dispatch(ctx, (await Reporter.new(ctx).raise_()).name)
    check(dispatch.HasField("ack_deadline"), "a PENDING dispatch has no ack_deadline [DSP-005]")
    ack_interval(dispatch)
    police = dispatches(ctx)
    request = D.AcknowledgeDispatchRequest(
        name=dispatch.name,
        request_id=ctx.request_id(),
        unit_id="종로-순21",
        eta_duration=duration_pb2.Duration(seconds=240),
    )
    acked = await expect_ok(police.AcknowledgeDispatch(request), "AcknowledgeDispatch")
    check(
        acked.state == D.DISPATCH_STATE_ACKNOWLEDGED and acked.unit_id == "종로-순21",
        "not ACKNOWLEDGED with the unit",
    )
    check(not acked.HasField("ack_deadline"), "ack_deadline was not cleared [DSP-005]")
    eta = to_dt(acked.eta_time) - to_dt(acked.acknowledge_time)
    check(abs(eta.total_seconds() - 240) < 1, f"eta_time is acknowledge_time + {eta} [DSP-008]")
    check(
        acked.acknowledged_by.role == common_pb2.ROLE_POLICE_OFFICER,
        "acknowledged_by is not the caller [DSP-008]",
    )
    retried = await expect_ok(police.AcknowledgeDispatch(request), "the same AcknowledgeDispatch retried")
    check(retried == acked, "the retry did not return the first outcome [IDM-002]")
    again = D.AcknowledgeDispatchRequest(name=dispatch.name, request_id=ctx.request_id(), unit_id="other")
    await expect_error(
        police.AcknowledgeDispatch(again), code=FAILED_PRECONDITION, reason="INVALID_STATE_TRANSITION"
    )


@case(
    "TC_DSP_006_SRV",
    title="UpdateDispatchStatus follows §13.3; CLEARED is terminal and carries no location",
    requirements=["DSP-010", "DSP-018"],
    profile=PROFILE,
    kind="negative",
)
async def status_transitions(ctx: CaseContext) -> None:
    dispatch = await police_dispatch(ctx, (await Reporter.new(ctx).raise_()).name)
    police = dispatches(ctx)

    def status(state: D.DispatchState.ValueType) -> Any:
        return police.UpdateDispatchStatus(
            D.UpdateDispatchStatusRequest(
                name=dispatch.name, request_id=ctx.request_id(), state=state, note="진행"
            )
        )

    await expect_error(
        status(D.DISPATCH_STATE_EN_ROUTE), code=FAILED_PRECONDITION, reason="INVALID_STATE_TRANSITION"
    )
    await police.AcknowledgeDispatch(
        D.AcknowledgeDispatchRequest(name=dispatch.name, request_id=ctx.request_id(), unit_id="u")
    )
    en_route = await expect_ok(status(D.DISPATCH_STATE_EN_ROUTE), "ACKNOWLEDGED → EN_ROUTE")
    check(en_route.status_note == "진행", "status_note is not the request's note [DSP-010]")
    await expect_ok(status(D.DISPATCH_STATE_ON_SCENE), "EN_ROUTE → ON_SCENE")
    await expect_error(
        status(D.DISPATCH_STATE_EN_ROUTE), code=FAILED_PRECONDITION, reason="INVALID_STATE_TRANSITION"
    )
    cleared = await expect_ok(status(D.DISPATCH_STATE_CLEARED), "ON_SCENE → CLEARED")
    check(
        not cleared.summary.HasField("location"),
        "a CLEARED dispatch still carries summary.location [DSP-018]",
    )
    await expect_error(
        status(D.DISPATCH_STATE_ON_SCENE), code=FAILED_PRECONDITION, reason="INVALID_STATE_TRANSITION"
    )


@case(
    "TC_DSP_007_SRV",
    title="CloseDispatch: AGENCY for an officer, OPERATOR for an operator; a terminal dispatch is refused",
    requirements=["DSP-011", "DSP-018"],
    profile=PROFILE,
    kind="negative",
)
async def close_dispatch(ctx: CaseContext) -> None:
    fire_agency(ctx)
    emergency = await Reporter.new(ctx).raise_(nature=2)  # FIRE: 119 and 112
    police = await police_dispatch(ctx, emergency.name)
    closed = await expect_ok(
        dispatches(ctx).CloseDispatch(
            D.CloseDispatchRequest(name=police.name, request_id=ctx.request_id(), note="불필요")
        ),
        "CloseDispatch by the police officer",
    )
    check(
        closed.state == D.DISPATCH_STATE_CLOSED and closed.close_reason == D.DISPATCH_CLOSE_REASON_AGENCY,
        "not CLOSED / AGENCY",
    )
    check(
        closed.status_note == "불필요" and closed.HasField("end_time"), "note or end_time missing [DSP-011]"
    )
    check(not closed.summary.HasField("location"), "a CLOSED dispatch carries summary.location [DSP-018]")
    await expect_error(
        dispatches(ctx).CloseDispatch(
            D.CloseDispatchRequest(name=police.name, request_id=ctx.request_id(), note="again")
        ),
        code=FAILED_PRECONDITION,
        reason="INVALID_STATE_TRANSITION",
        what="closing a closed dispatch",
    )
    listed = await expect_ok(
        dispatches(ctx, "CENTER_OPERATOR").ListDispatches(
            D.ListDispatchesRequest(parent=ctx.center(), emergency=emergency.name, agency=fire_agency(ctx))
        ),
        "ListDispatches of the 119 dispatch",
    )
    check(len(listed.dispatches) == 1, "a FIRE emergency has no single 119 dispatch")
    by_operator = await expect_ok(
        dispatches(ctx, "CENTER_OPERATOR").CloseDispatch(
            D.CloseDispatchRequest(
                name=listed.dispatches[0].name, request_id=ctx.request_id(), note="전화 확인"
            )
        ),
        "CloseDispatch by an operator",
    )
    check(
        by_operator.close_reason == D.DISPATCH_CLOSE_REASON_OPERATOR,
        "an operator's close is not OPERATOR [DSP-011]",
    )


@case(
    "TC_DSP_008_SRV",
    title="When the emergency is resolved its open dispatches are CLOSED / EMERGENCY_ENDED without location",
    requirements=["DSP-012", "DSP-018", "EMG-011"],
    profile=PROFILE,
    kind="positive",
)
async def closed_with_emergency(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_()
    dispatch = await police_dispatch(ctx, emergency.name)
    stream = subscribe(ctx)
    await replay(stream)
    await reporter.cancel(emergency.name)
    closed, _ = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CLOSED and ev.dispatch.name == dispatch.name,
        3.0,
        "the CLOSED event",
    )
    check(
        closed.dispatch.close_reason == D.DISPATCH_CLOSE_REASON_EMERGENCY_ENDED,
        "close_reason is not EMERGENCY_ENDED",
    )
    check(
        not closed.dispatch.summary.HasField("location"),
        "the CLOSED event carries summary.location [DSP-018]",
    )


@case(
    "TC_DSP_009_SRV",
    title="A fire officer acting on, reading or subscribing to the police's dispatches gets NOT_OWNER",
    requirements=["DSP-019", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def other_agency(ctx: CaseContext) -> None:
    fire_agency(ctx)
    dispatch = await police_dispatch(ctx, (await Reporter.new(ctx).raise_()).name)
    fire = dispatches(ctx, "FIRE_OFFICER")
    await expect_error(
        fire.GetDispatch(D.GetDispatchRequest(name=dispatch.name)), code=PERMISSION_DENIED, reason="NOT_OWNER"
    )
    await expect_error(
        fire.AcknowledgeDispatch(
            D.AcknowledgeDispatchRequest(name=dispatch.name, request_id=ctx.request_id(), unit_id="x")
        ),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="AcknowledgeDispatch of the police's dispatch",
    )
    await expect_error(
        fire.ListDispatches(D.ListDispatchesRequest(parent=ctx.center(), agency=police_agency(ctx))),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="ListDispatches of the police agency",
    )
    await expect_stream_error(
        subscribe(ctx, "FIRE_OFFICER"), PERMISSION_DENIED, "NOT_OWNER", "SubscribeDispatches of 112"
    )


@case(
    "TC_DSP_010_SRV",
    title="Roles outside the dispatch authorization table get ROLE_NOT_PERMITTED",
    requirements=["SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def dispatch_roles_denied(ctx: CaseContext) -> None:
    name = f"{ctx.center()}/dispatches/{ctx.resource_id('d')}"
    for role in ("APP_USER", "GUARDIAN", "AUDITOR"):
        stub = dispatches(ctx, role)
        await expect_error(
            stub.GetDispatch(D.GetDispatchRequest(name=name)),
            code=PERMISSION_DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"GetDispatch by {role}",
        )
    await expect_stream_error(
        subscribe(ctx, "APP_USER"), PERMISSION_DENIED, "ROLE_NOT_PERMITTED", "SubscribeDispatches by an app"
    )
    await expect_error(
        dispatches(ctx, "AUDITOR").ListDispatches(D.ListDispatchesRequest(parent=ctx.center())),
        code=PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="ListDispatches by an auditor",
    )


@case(
    "TC_DSP_011_SRV",
    title="A dispatch carries the emergency's mode, kind, location and cameras, its origin, and no profile",
    requirements=["DSP-003", "DSP-004"],
    profile=PROFILE,
    kind="positive",
)
async def dispatch_content(ctx: CaseContext) -> None:
    from ansim.v1 import emergency_pb2 as E

    profile = E.ConsentedProfile(display_name="김안심", phone="010-1234-5678")
    profile.consent_time.GetCurrentTime()
    emergency = await Reporter.new(ctx).raise_(profile=profile, civic_address=CIVIC)
    dispatch = await police_dispatch(ctx, emergency.name)
    summary = dispatch.summary
    check(
        dispatch.mode == ctx.mode and dispatch.incident_id == emergency.incident_id,
        "mode or incident_id differ [DSP-004]",
    )
    check(
        summary.kind == E.EMERGENCY_KIND_APP_SOS and summary.HasField("location"),
        "summary lacks kind or location [DSP-003]",
    )
    lat, lon = where(ctx)
    check(
        abs(dispatch.origin.latitude - lat) < 1e-6 and abs(dispatch.origin.longitude - lon) < 1e-6,
        "origin is not the location [DSP-004]",
    )
    check(len(summary.nearby_cameras) <= 16, "more than 16 nearby cameras [DSP-003]")
    text = str(dispatch)
    check(
        "김안심" not in text and "1234-5678" not in text,
        "the dispatch carries the reporter's name or phone [DSP-003]",
    )


@case(
    "TC_DSP_012_SRV",
    title="An unacknowledged dispatch is re-notified at its ack_deadline with a deadline one interval later",
    requirements=["DSP-006"],
    profile=PROFILE,
    kind="positive",
    timeout=50.0,
)
async def renotified(ctx: CaseContext) -> None:
    stream = subscribe(ctx)
    await replay(stream)
    emergency = await Reporter.new(ctx).raise_()
    created, _ = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == emergency.name,
        5.0,
        "CREATED",
    )
    interval = ack_interval(created.dispatch)
    renotified, _ = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_RENOTIFIED and ev.dispatch.name == created.dispatch.name,
        interval + 5.0,
        f"the RENOTIFIED event {interval:.0f} s after creation [DSP-006]",
    )
    d = renotified.dispatch
    check(d.renotification_count == 1, f"renotification_count is {d.renotification_count}, not 1")
    check(
        (to_dt(d.ack_deadline) - to_dt(created.dispatch.ack_deadline)).total_seconds() == interval,
        f"the new ack_deadline is not {interval:.0f} s after the first [DSP-006]",
    )
    late = to_dt(renotified.event_time) - to_dt(created.dispatch.ack_deadline)
    check(late.total_seconds() <= 2.5, f"RENOTIFIED came {late} after the deadline [DSP-006]")


@case(
    "TC_DSP_013_SRV",
    title="ListDispatches: an officer sees only its agency's, filters apply, newest first, paginated",
    requirements=["DSP-020"],
    profile=PROFILE,
    kind="positive",
)
async def list_dispatches(ctx: CaseContext) -> None:
    fire_agency(ctx)
    emergency = await Reporter.new(ctx).raise_(nature=2)
    await police_dispatch(ctx, emergency.name)
    await asyncio.sleep(0.3)
    police = dispatches(ctx)
    mine = await expect_ok(
        police.ListDispatches(D.ListDispatchesRequest(parent=ctx.center(), emergency=emergency.name)),
        "ListDispatches",
    )
    check(
        [d.agency for d in mine.dispatches] == [police_agency(ctx)],
        "an officer listed another agency's dispatch",
    )
    page = await expect_ok(
        police.ListDispatches(D.ListDispatchesRequest(parent=ctx.center(), mode=ctx.mode, page_size=1)),
        "page 1",
    )
    check(
        len(page.dispatches) == 1 and bool(page.next_page_token), "page_size 1 gave no single item and token"
    )
    rest = await expect_ok(
        police.ListDispatches(
            D.ListDispatchesRequest(
                parent=ctx.center(), mode=ctx.mode, page_size=1, page_token=page.next_page_token
            )
        ),
        "page 2",
    )
    check(len(rest.dispatches) == 1, "the second page is empty")
    check(
        to_dt(page.dispatches[0].create_time) >= to_dt(rest.dispatches[0].create_time),
        "not newest first [DSP-020]",
    )


@case(
    "TC_DSP_014_SRV",
    title="Region filters: a non-matching sigungu code gets nothing, an area around the origin gets it",
    requirements=["DSP-016"],
    profile=PROFILE,
    kind="positive",
)
async def region_filter(ctx: CaseContext) -> None:
    lat, lon = where(ctx)
    area = common_pb2.Area(
        circles=[common_pb2.Area.Circle(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=500)]
    )
    inside = subscribe(ctx, area=area)
    elsewhere = subscribe(ctx, sigungu_codes=["99999"])
    await replay(inside)
    await replay(elsewhere)
    emergency = await Reporter.new(ctx).raise_()
    await inside.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == emergency.name,
        5.0,
        "the dispatch on the subscription whose area holds its origin",
    )
    await asyncio.sleep(0.5)
    leaked = []
    while not elsewhere.queue.empty():
        event = elsewhere.queue.get_nowait()
        if event is not None and event.dispatch.emergency == emergency.name:
            leaked.append(event.dispatch.name)
    check(not leaked, "a subscription filtered to sigungu 99999 received the dispatch [DSP-016]")


@case(
    "TC_DSP_015_SRV",
    title="GetDispatch of an unknown dispatch is NOT_FOUND, of a malformed name INVALID_FIELD",
    requirements=["GEN-023"],
    profile=PROFILE,
    kind="negative",
)
async def unknown_dispatch(ctx: CaseContext) -> None:
    stub = dispatches(ctx, "CENTER_OPERATOR")
    await expect_error(
        stub.GetDispatch(D.GetDispatchRequest(name=f"{ctx.center()}/dispatches/{ctx.resource_id('d')}")),
        code=grpc.StatusCode.NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
    )
    await expect_error(
        stub.GetDispatch(D.GetDispatchRequest(name="dispatches/Not_Valid")),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="name",
    )


@case(
    "TC_DSP_016_SRV",
    title="A TEST dispatch never reaches a LIVE subscription of its agency",
    requirements=["GEN-011", "DSP-015", "EMG-029"],
    profile=PROFILE,
    kind="negative",
    features=["live-read-isolation"],
)
async def test_dispatch_not_live(ctx: CaseContext) -> None:
    """TC_DSP_004_SRV shows isolation from EXERCISE; this is the LIVE side of GEN-011. The LIVE
    subscription only reads (the case creates nothing LIVE), is narrowed to a 10 m circle around the
    case's own TEST emergency, and its events are neither recorded nor reported unless they concern
    that emergency or carry another mode than LIVE, so a run at a production center keeps no real
    dispatch. A center that refuses LIVE subscriptions to the suite's credentials cannot leak to
    them: the case then passes with a note."""
    lat, lon = where(ctx)
    area = common_pb2.Area(
        circles=[common_pb2.Area.Circle(center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=10)]
    )
    test = subscribe(ctx, area=area)
    await replay(test)
    live_request = D.SubscribeDispatchesRequest(
        parent=ctx.center(), agency=police_agency(ctx), mode=common_pb2.MODE_LIVE, area=area
    )
    live_call = dispatches(ctx).SubscribeDispatches(live_request)
    ctx.on_cleanup(lambda: _cancel(live_call))
    live_events: list[D.DispatchEvent] = []  # kept in memory only, never recorded
    replayed = asyncio.Event()

    async def read_live() -> grpc.aio.AioRpcError | None:
        try:
            async for event in live_call:
                if event.type == T.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE:
                    replayed.set()
                elif event.HasField("dispatch"):
                    live_events.append(event)
        except grpc.aio.AioRpcError as error:
            return error
        return None

    reader = asyncio.ensure_future(read_live())
    ctx.on_cleanup(lambda: _cancel(reader))
    waiter = asyncio.ensure_future(replayed.wait())
    await asyncio.wait([reader, waiter], timeout=10.0, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not replayed.is_set():
        error = reader.result() if reader.done() else None
        if error is not None and error.code() == PERMISSION_DENIED:
            ctx.note(f"the center refuses LIVE subscriptions to these credentials: {error.details()}")
            return
        fail(f"the LIVE subscription sent no REPLAY_COMPLETE within 10 s ({error!r})")
    emergency = await Reporter.new(ctx).raise_()
    await test.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == emergency.name,
        5.0,
        "the TEST dispatch on the TEST subscription whose area holds its origin",
    )
    await asyncio.sleep(1.0)
    leaked = sorted(
        {
            f"{ev.dispatch.name} ({common_pb2.Mode.Name(ev.dispatch.mode)})"
            for ev in live_events
            if ev.dispatch.emergency == emergency.name or ev.dispatch.mode != common_pb2.MODE_LIVE
        }
    )
    check(not leaked, f"a LIVE subscription received TEST dispatches: {leaked} [GEN-011, DSP-015]")


async def _cancel(call: Any) -> None:
    call.cancel()


@case(
    "TC_DSP_017_SRV",
    title=(
        "An unacknowledged dispatch is re-notified three times, then ESCALATED at the fourth deadline "
        "(escalate_time set, ack_deadline cleared) and can still be acknowledged"
    ),
    requirements=["DSP-007", "DSP-006", "DSP-008"],
    profile=PROFILE,
    kind="positive",
    timeout=55.0,
)
async def escalated(ctx: CaseContext) -> None:
    """The wait is four acknowledgement intervals, read from the dispatch (DSP-005 lets a TEST-mode
    dispatch have an interval down to 5 s); the case is skipped when that exceeds
    MAX_DEADLINE_WAIT_S."""
    stream = subscribe(ctx)
    await replay(stream)
    emergency = await Reporter.new(ctx).raise_()
    created, _ = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_CREATED and ev.dispatch.emergency == emergency.name,
        5.0,
        "CREATED",
    )
    name = created.dispatch.name
    interval = ack_interval(created.dispatch)
    if 4 * interval > MAX_DEADLINE_WAIT_S:
        ctx.skip(
            f"the dispatch's acknowledgement interval is {interval:.0f} s, so escalation comes "
            f"{4 * interval:.0f} s after creation; the suite waits at most {MAX_DEADLINE_WAIT_S:.0f} s "
            "(DSP-005 lets a deployment shorten it to 5 s for TEST mode)"
        )
    first = to_dt(created.dispatch.ack_deadline)
    fourth = first + timedelta(seconds=3 * interval)
    wait = (fourth - datetime.now(UTC)).total_seconds() + 5.0
    escalation, before = await stream.until(
        lambda ev: ev.type == T.DISPATCH_EVENT_TYPE_ESCALATED and ev.dispatch.name == name,
        max(wait, 5.0),
        f"the ESCALATED event at the fourth deadline, {4 * interval:.0f} s after creation [DSP-007]",
    )
    renotified = [
        ev.dispatch
        for ev in before
        if ev.type == T.DISPATCH_EVENT_TYPE_RENOTIFIED and ev.dispatch.name == name
    ]
    check(
        [d.renotification_count for d in renotified] == [1, 2, 3],
        f"expected RENOTIFIED with counts 1, 2, 3 before the escalation, got "
        f"{[d.renotification_count for d in renotified]} [DSP-006]",
    )
    check(
        [to_dt(d.ack_deadline) for d in renotified]
        == [first + timedelta(seconds=k * interval) for k in (1, 2, 3)],
        "each re-notification must set ack_deadline one interval after the deadline that passed [DSP-006]",
    )
    d = escalation.dispatch
    check(
        d.state == D.DISPATCH_STATE_PENDING,
        f"an escalated dispatch stays PENDING, got {D.DispatchState.Name(d.state)}",
    )
    check(
        d.renotification_count == 3, f"renotification_count is {d.renotification_count} at escalation, not 3"
    )
    check(d.HasField("escalate_time"), "the escalated dispatch has no escalate_time [DSP-007]")
    check(not d.HasField("ack_deadline"), "the escalation did not clear ack_deadline [DSP-007]")
    late = (to_dt(escalation.event_time) - fourth).total_seconds()
    check(
        -0.5 <= late <= 2.5,
        f"ESCALATED came {late:+.1f} s after the fourth deadline; it must come within 2 s of it [DSP-007]",
    )
    acked = await expect_ok(
        dispatches(ctx).AcknowledgeDispatch(
            D.AcknowledgeDispatchRequest(name=name, request_id=ctx.request_id(), unit_id="종로-순21")
        ),
        "AcknowledgeDispatch after the escalation",
    )
    check(
        acked.state == D.DISPATCH_STATE_ACKNOWLEDGED,
        "an escalated dispatch must still accept an acknowledgement [DSP-008]",
    )
