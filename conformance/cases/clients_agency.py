"""Client-mode cases of the **agency** profile: checks over what a 112/119 situation-room client
sent the harness center (conformance/harness/agency_center.py describes the stages and faults).

Needs a human: AGY-006 (TEST dispatches never shown as real), AGY-007 (video token handling),
AGY-008 (one record per dispatch, newest update_time), the "alert officers again on RENOTIFIED"
half of AGY-001. Not hosted by the harness yet: CameraService video grants (AGY-010, and the
CreateVideoGrant / RevokeVideoGrant request_ids of AGY-005).
"""

from __future__ import annotations

from ansim.v1 import common_pb2, dispatch_pb2

from conformance import CaseContext, case
from conformance.harness import checks
from conformance.harness.recording import Call

D = dispatch_pb2
P = "agency"


def _subscriptions(ctx: CaseContext, at_least: int) -> list[Call]:
    s = checks.session(ctx)
    calls = checks.need_calls(ctx, s, "SubscribeDispatches", "step subscribe")
    if len(calls) < at_least:
        checks.fail(
            f"the client subscribed {len(calls)} time(s); the scenario needs {at_least} to get this far "
            f"(it stopped at step {s.scenario.current_name})",
            calls[-1],
        )
    return calls


def _cursor(call: Call) -> str:
    request = call.request
    assert isinstance(request, D.SubscribeDispatchesRequest)
    return request.resume_cursor


def _last_event(call: Call) -> D.DispatchEvent:
    event = call.responses[-1].message
    assert isinstance(event, D.DispatchEvent)
    return event


@case(
    "TC_AGY_001_CLT",
    title="Every PENDING dispatch received is acknowledged before its ack_deadline",
    requirements=["AGY-001"],
    profile=P,
    kind="positive",
)
async def acknowledged_in_time(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    first = _subscriptions(ctx, 1)[0]
    deadlines: dict[str, float] = {}
    for sent in first.responses:
        event = sent.message
        assert isinstance(event, D.DispatchEvent)
        if event.HasField("dispatch") and event.dispatch.state == D.DISPATCH_STATE_PENDING:
            deadlines[event.dispatch.name] = event.dispatch.ack_deadline.ToNanoseconds() / 1e9
    checks.require(ctx, bool(deadlines), "the harness delivered no PENDING dispatch", first)
    acks = checks.need_calls(ctx, s, "AcknowledgeDispatch", "step subscribe")
    for name, deadline in deadlines.items():
        ok = [c for c in acks if c.ok and getattr(c.request, "name", "") == name]
        if not ok:
            checks.fail(f"PENDING dispatch {name} was never acknowledged", acks[-1])
        late = s.recording.wall(ok[0].started) - deadline
        checks.require(ctx, late <= 0, f"{name} was acknowledged {late:.1f} s after its ack_deadline", ok[0])


@case(
    "TC_AGY_002_CLT",
    title="After a disconnection the client resubscribes within 5 s with the cursor of the last event it "
    "processed",
    requirements=["AGY-002", "STM-005"],
    profile=P,
    kind="negative",
)
async def resubscribes_with_cursor(ctx: CaseContext) -> None:
    calls = _subscriptions(ctx, 2)
    first, again = calls[0], calls[1]
    last = _last_event(first)
    checks.require(
        ctx,
        _cursor(again) == last.cursor,
        f"the client resubscribed with resume_cursor {_cursor(again)!r}, not the cursor of the last event it "
        f"processed ({last.cursor!r})",
        again,
    )
    if first.ended is not None:
        checks.require(
            ctx,
            again.started - first.ended <= 5.0,
            "the client resubscribed more than 5 s after the break",
            again,
        )
    checks.open_until_finished(ctx, calls[-1], "last dispatch subscription")


@case(
    "TC_AGY_003_CLT",
    title="On a sequence gap the client resubscribes with the cursor of the last event it processed",
    requirements=["AGY-003"],
    profile=P,
    kind="negative",
)
async def resubscribes_on_gap(ctx: CaseContext) -> None:
    calls = _subscriptions(ctx, 3)
    gap_call, after = calls[1], calls[2]
    before_gap = gap_call.responses[0].message
    assert isinstance(before_gap, D.DispatchEvent)
    checks.require(
        ctx,
        gap_call.code == "CANCELLED",
        "the client did not leave the stream with the gap (the harness closed it after "
        f"{gap_call.details or 'a while'})",
        gap_call,
    )
    checks.require(
        ctx,
        _cursor(after) == before_gap.cursor,
        f"after the gap the client resubscribed with {_cursor(after)!r}, not {before_gap.cursor!r} "
        "(the last event "
        "before the gap)",
        after,
    )


@case(
    "TC_AGY_004_CLT",
    title="A redelivered event (same sequence) is discarded, not processed again",
    requirements=["AGY-003", "STM-005"],
    profile=P,
    kind="negative",
)
async def duplicates_discarded(ctx: CaseContext) -> None:
    checks.processed_once(ctx, "subscribe")


@case(
    "TC_AGY_005_CLT",
    title="After CURSOR_EXPIRED the client resubscribes without a cursor and, at REPLAY_COMPLETE, holds "
    "exactly the replayed dispatches as active",
    requirements=["AGY-004"],
    profile=P,
    kind="negative",
)
async def restarts_after_expired(ctx: CaseContext) -> None:
    calls = _subscriptions(ctx, 4)
    expired, fresh = calls[2], calls[3]
    checks.require(
        ctx, expired.code == "OUT_OF_RANGE", "the harness did not get to answer CURSOR_EXPIRED", expired
    )
    checks.require(
        ctx,
        _cursor(fresh) == "",
        f"after CURSOR_EXPIRED the client resubscribed with cursor {_cursor(fresh)!r}",
        fresh,
    )
    body = checks.report(checks.session(ctx), "subscribe")
    if body is not None and "active_after_replay" in body:
        replayed = sorted(
            e.message.dispatch.name
            for e in fresh.responses
            if isinstance(e.message, D.DispatchEvent) and e.message.type == D.DISPATCH_EVENT_TYPE_SNAPSHOT
        )
        active = sorted(str(n) for n in body["active_after_replay"])
        checks.require(
            ctx,
            active == replayed,
            f"at REPLAY_COMPLETE the client holds {active} as active; replayed: {replayed}",
            fresh,
        )
    else:
        ctx.note(
            "no driver report of the active set: confirm on the console that only the replayed "
            "dispatch is shown"
        )


@case(
    "TC_AGY_006_CLT",
    title="An AcknowledgeDispatch that failed UNAVAILABLE (unknown reason, 'do not retry' text) is retried "
    "with the same request_id",
    requirements=["AGY-005", "IDM-004", "ERR-005", "ERR-006"],
    profile=P,
    kind="negative",
)
async def ack_retried(ctx: CaseContext) -> None:
    checks.retried_with_same_id(ctx, "AcknowledgeDispatch")


@case(
    "TC_AGY_007_CLT",
    title="Every AcknowledgeDispatch and UpdateDispatchStatus carries a fresh UUID request_id",
    requirements=["AGY-005", "IDM-004", "IDM-001"],
    profile=P,
    kind="positive",
)
async def fresh_uuids(ctx: CaseContext) -> None:
    checks.request_ids_are_uuids(ctx)
    checks.fresh_ids_for_new_operations(ctx)


@case(
    "TC_AGY_008_CLT",
    title="An UpdateDispatchStatus that failed UNAVAILABLE is retried with the same request_id",
    requirements=["AGY-005", "IDM-004"],
    profile=P,
    kind="negative",
)
async def status_retried(ctx: CaseContext) -> None:
    checks.retried_with_same_id(ctx, "UpdateDispatchStatus")


@case(
    "TC_AGY_009_CLT",
    title="No request breaks its constraints; the subscription is of the mode the scenario asks for (TEST)",
    requirements=["GEN-031"],
    profile=P,
    kind="positive",
)
async def requests_valid(ctx: CaseContext) -> None:
    checks.requests_valid(ctx)
    for call in _subscriptions(ctx, 1):
        request = call.request
        assert isinstance(request, D.SubscribeDispatchesRequest)
        checks.require(ctx, request.mode == common_pb2.MODE_TEST, "a subscription is not MODE_TEST", call)


@case(
    "TC_AGY_010_CLT",
    title="Events and responses with unknown fields and enum values do not stop the client",
    requirements=["GEN-004", "GEN-040"],
    profile=P,
    kind="negative",
)
async def tolerates_unknown(ctx: CaseContext) -> None:
    checks.survived_unknown_content(ctx)


@case(
    "TC_AGY_011_CLT",
    title="The client refuses a center whose certificate its trust anchors do not sign, sending nothing",
    requirements=["SEC-004"],
    profile=P,
    kind="negative",
)
async def verifies_certificate(ctx: CaseContext) -> None:
    checks.verifies_server_certificate(ctx)


@case(
    "TC_AGY_012_CLT",
    title="The unit's progress is reported EN_ROUTE, ON_SCENE, CLEARED with UpdateDispatchStatus",
    requirements=["AGY-009"],
    profile=P,
    kind="positive",
)
async def reports_progress(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    calls = [c for c in checks.need_calls(ctx, s, "UpdateDispatchStatus", "step report_status") if c.ok]
    states = [c.request.state for c in calls if isinstance(c.request, D.UpdateDispatchStatusRequest)]
    wanted = [D.DISPATCH_STATE_EN_ROUTE, D.DISPATCH_STATE_ON_SCENE, D.DISPATCH_STATE_CLEARED]
    checks.require(
        ctx,
        states == wanted,
        f"reported states {[D.DispatchState.Name(x) for x in states]}, expected EN_ROUTE, ON_SCENE, CLEARED",
    )
