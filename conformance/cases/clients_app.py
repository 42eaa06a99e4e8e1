"""Client-mode cases of the **app** profile: checks over what a safety app sent the harness center
(conformance/harness/app_center.py describes the scenario and its faults).

Needs a human or a lab, not covered here: APP-003 (fix_time is the measurement time), APP-007 (LIVE
only from production builds), APP-008 (identical behaviour after a duress cancel), APP-002's 112
call offer. Not hosted by the harness yet: APP-009 (countdown), APP-011 (SafeTripService),
the CURSOR_EXPIRED half of APP-006, GRD-018 (guardian app).
"""

from __future__ import annotations

import itertools

from ansim.v1 import common_pb2, emergency_pb2

from conformance import CaseContext, case
from conformance.harness import checks
from conformance.harness.app_center import CUT_AT_EVENT, FIXES, PEER_CENTER
from conformance.harness.recording import Call

E = emergency_pb2
P = "app"


def _mode_name(mode: int) -> str:
    return common_pb2.Mode.Name(mode) if mode in common_pb2.Mode.values() else str(mode)  # type: ignore[arg-type]


def _emergency_name(ctx: CaseContext) -> str:
    s = checks.session(ctx)
    raised = [c for c in s.recording.of("RaiseEmergency") if c.ok and c.responses]
    if not raised:
        checks.fail(f"no RaiseEmergency got through (scenario at {s.scenario.current_name})")
    response = raised[0].responses[0].message
    assert isinstance(response, E.Emergency)
    return response.name


@case(
    "TC_APP_001_CLT",
    title="A RaiseEmergency that failed UNAVAILABLE (with a text saying 'do not retry') is retried with "
    "the same request_id",
    requirements=["APP-001", "IDM-004", "ERR-005"],
    profile=P,
    kind="negative",
)
async def raise_retried_same_id(ctx: CaseContext) -> None:
    checks.retried_with_same_id(ctx, "RaiseEmergency")


@case(
    "TC_APP_002_CLT",
    title="Every mutating request carries a request_id that is a UUID",
    requirements=["IDM-004", "IDM-001"],
    profile=P,
    kind="positive",
)
async def request_ids_uuid(ctx: CaseContext) -> None:
    checks.request_ids_are_uuids(ctx)


@case(
    "TC_APP_003_CLT",
    title="A new operation (the cancel after the raise) gets a fresh request_id",
    requirements=["IDM-004"],
    profile=P,
    kind="positive",
)
async def fresh_request_ids(ctx: CaseContext) -> None:
    checks.fresh_ids_for_new_operations(ctx)


@case(
    "TC_APP_004_CLT",
    title="A CancelEmergency that failed UNAVAILABLE with an unknown ErrorInfo reason is retried with "
    "the same request_id",
    requirements=["IDM-004", "ERR-006"],
    profile=P,
    kind="negative",
)
async def cancel_retried_same_id(ctx: CaseContext) -> None:
    checks.retried_with_same_id(ctx, "CancelEmergency")


@case(
    "TC_APP_005_CLT",
    title="No request breaks the buf.validate constraints of its message",
    requirements=["GEN-031"],
    profile=P,
    kind="positive",
)
async def requests_valid(ctx: CaseContext) -> None:
    checks.requests_valid(ctx)


@case(
    "TC_APP_006_CLT",
    title="RaiseEmergency carries the mode the scenario asks for (MODE_TEST in a conformance run)",
    requirements=["GEN-031"],
    profile=P,
    kind="positive",
)
async def raise_mode(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    for call in checks.need_calls(ctx, s, "RaiseEmergency", "step raise_sos"):
        request = call.request
        assert isinstance(request, E.RaiseEmergencyRequest)
        checks.require(
            ctx,
            request.mode == common_pb2.MODE_TEST,
            f"RaiseEmergency mode is {_mode_name(request.mode)}, "
            "not MODE_TEST (a conformance run is TEST mode; MODE_UNSPECIFIED is never valid)",
            call,
        )


@case(
    "TC_APP_007_CLT",
    title="Every Location the app sends carries fix_time and coordinates and uncertainty in range",
    requirements=["LOC-004", "LOC-002", "LOC-003"],
    profile=P,
    kind="positive",
)
async def locations_valid(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    seen = 0
    for call, item in s.recording.requests():
        location = getattr(item.message, "location", None)
        if location is None:
            continue
        seen += 1
        if not location.HasField("fix_time"):
            checks.show(ctx, [call])
            checks.fail(f"a Location in {call.rpc} has no fix_time", call)
        broken = [v for v in item.violations if v.field.startswith("location")]
        if broken:
            checks.show(ctx, [call])
            checks.fail(f"a Location in {call.rpc} breaks {broken[0].field}: {broken[0].description}", call)
    checks.require(ctx, seen > 0, "the app sent no Location")


def _acked(call: Call) -> set[int]:
    return {m.message.sequence for m in call.responses if isinstance(m.message, E.LocationAck)}


@case(
    "TC_APP_008_CLT",
    title="Fixes are numbered 1, 2, 3 … and, after a broken StreamLocation, the unacknowledged fix is "
    "resent with its sequence and content before newer fixes",
    requirements=["APP-005"],
    profile=P,
    kind="negative",
)
async def fixes_resent_in_order(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    calls = checks.need_calls(ctx, s, "StreamLocation", "step track")
    first_content: dict[int, bytes] = {}
    acked: set[int] = set()
    newest = 0
    owed: list[int] = []
    for call in calls:
        for _n, item in enumerate(call.requests):
            request = item.message
            assert isinstance(request, E.StreamLocationRequest)
            seq = request.sequence
            content = request.location.SerializeToString(deterministic=True)
            if seq in first_content:
                checks.require(
                    ctx,
                    content == first_content[seq],
                    f"fix {seq} was resent with a different location or fix_time than the first time",
                    call,
                )
                if seq in owed:
                    owed.remove(seq)
                continue
            checks.require(
                ctx,
                seq == newest + 1,
                f"a new fix has sequence {seq}; the next in order was {newest + 1} "
                "(fixes are numbered 1, 2, 3 …)",
                call,
            )
            checks.require(
                ctx,
                not owed,
                f"new fix {seq} was sent on StreamLocation #{call.id} before the unacknowledged fix(es) "
                f"{owed} of the broken call were resent",
                call,
            )
            first_content[seq] = content
            newest = seq
        acked |= _acked(call)
        owed = sorted(seq for seq in first_content if seq not in acked)
    checks.require(
        ctx,
        len(calls) > 1,
        "the app did not open a new StreamLocation after the harness broke the first",
        calls[0],
    )
    checks.require(
        ctx, newest >= FIXES, f"the app sent {newest} fixes, the scenario asked for {FIXES}", calls[-1]
    )
    checks.require(ctx, not owed, f"fix(es) {owed} were never resent after the stream broke", calls[-1])


@case(
    "TC_APP_009_CLT",
    title="While the emergency is active the app keeps StreamLocation open, reopens it after a break, and "
    "sends at most one new fix per second and at least one every 10 s",
    requirements=["APP-004"],
    profile=P,
    kind="positive",
)
async def stream_kept_open(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    calls = checks.need_calls(ctx, s, "StreamLocation", "step track")
    new: list[tuple[float, int, Call]] = []
    seen: set[int] = set()
    for call in calls:
        for item in call.requests:
            request = item.message
            assert isinstance(request, E.StreamLocationRequest)
            if request.sequence not in seen:
                seen.add(request.sequence)
                new.append((item.at, request.sequence, call))
    # Receipt times jitter with the network and the harness's load: allow one second of slack over
    # any run of fixes (a burst of several fixes at once still fails).
    for i, (t1, _, _) in enumerate(new):
        for j in range(i + 1, len(new)):
            t2, seq, call = new[j]
            checks.require(
                ctx,
                t2 - t1 >= (j - i) - 1.0,
                f"new fixes {new[i][1]}..{seq} came within {t2 - t1:.2f} s (at most one fix per second)",
                call,
            )
    for (t1, _, _), (t2, seq, call) in itertools.pairwise(new):
        checks.require(
            ctx,
            t2 - t1 <= 10.0,
            f"new fix {seq} came {t2 - t1:.1f} s after the previous one (at least every 10 s)",
            call,
        )
    for before, after in itertools.pairwise(calls):
        if before.ended is not None:
            checks.require(
                ctx,
                after.started - before.ended <= 10.0,
                f"StreamLocation was reopened only {after.started - before.ended:.1f} s after it broke",
                after,
            )
    last = calls[-1]
    checks.require(
        ctx,
        last.code in ("PENDING", "FAILED_PRECONDITION", "CANCELLED"),
        f"the app ended StreamLocation itself ({last.code}) while the emergency was active",
        last,
    )


@case(
    "TC_APP_010_CLT",
    title="After WatchEmergency breaks the app resubscribes with the cursor of the last event it processed",
    requirements=["APP-006", "STM-005"],
    profile=P,
    kind="negative",
)
async def watch_resumed(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    calls = checks.need_calls(ctx, s, "WatchEmergency", "step track")
    first = calls[0]
    checks.require(
        ctx,
        len(first.responses) >= CUT_AT_EVENT,
        "the harness could not deliver the events before the break",
        first,
    )
    checks.require(ctx, len(calls) > 1, "the app did not resubscribe after the watch stream broke", first)
    last = first.responses[-1].message
    assert isinstance(last, E.EmergencyEvent)
    again = calls[1]
    request = again.request
    assert isinstance(request, E.WatchEmergencyRequest)
    checks.require(
        ctx,
        request.resume_cursor == last.cursor,
        f"the app resubscribed with resume_cursor {request.resume_cursor!r}, "
        "not the cursor of the last event it "
        f"processed ({last.cursor!r})",
        again,
    )
    if first.ended is not None:
        checks.require(
            ctx,
            again.started - first.ended <= 10.0,
            "the app resubscribed more than 10 s after the break",
            again,
        )


@case(
    "TC_APP_011_CLT",
    title="An event redelivered after a resume (same sequence) is discarded, not processed again",
    requirements=["STM-005"],
    profile=P,
    kind="negative",
)
async def duplicates_discarded(ctx: CaseContext) -> None:
    checks.processed_once(ctx, "track")


@case(
    "TC_APP_012_CLT",
    title="After HANDLING_CENTER_CHANGED the app keeps using the emergency name RaiseEmergency returned",
    requirements=["APP-010"],
    profile=P,
    kind="positive",
)
async def keeps_emergency_name(ctx: CaseContext) -> None:
    name = _emergency_name(ctx)
    s = checks.session(ctx)
    for rpc in ("StreamLocation", "WatchEmergency", "CancelEmergency"):
        for call in s.recording.of(rpc):
            for item in call.requests:
                used = getattr(item.message, "name", "")
                if used != name:
                    checks.show(ctx, [call])
                    where = " (the new handling center)" if used.startswith(PEER_CENTER) else ""
                    checks.fail(
                        f"{rpc} addresses {used!r}{where}, "
                        f"not the emergency {name!r} RaiseEmergency returned",
                        call,
                    )
    checks.require(ctx, bool(s.recording.of("CancelEmergency")), "the app never cancelled (step cancel)")


@case(
    "TC_APP_013_CLT",
    title="Responses and events with unknown fields and unknown enum values do not stop the app",
    requirements=["GEN-004", "GEN-040"],
    profile=P,
    kind="negative",
)
async def tolerates_unknown(ctx: CaseContext) -> None:
    checks.survived_unknown_content(ctx)


@case(
    "TC_APP_014_CLT",
    title="The app refuses a center whose certificate its trust anchors do not sign, sending nothing",
    requirements=["SEC-004"],
    profile=P,
    kind="negative",
)
async def verifies_certificate(ctx: CaseContext) -> None:
    checks.verifies_server_certificate(ctx)


@case(
    "TC_APP_015_CLT",
    title="The first fix arrives within 20 s of the raise and fixes follow at least every 10 s",
    requirements=["LOC-009"],
    profile=P,
    kind="positive",
)
async def fix_cadence(ctx: CaseContext) -> None:
    s = checks.session(ctx)
    raised = [c for c in s.recording.of("RaiseEmergency") if c.ok]
    fixes = [item.at for call in s.recording.of("StreamLocation") for item in call.requests]
    checks.require(ctx, bool(raised) and bool(fixes), "no raise or no fix was recorded")
    checks.require(
        ctx, fixes[0] - (raised[0].ended or 0) <= 20.0, "the first fix came more than 20 s after the raise"
    )


@case(
    "TC_APP_016_CLT",
    title="After UNAVAILABLE with RetryInfo the app waits at least that delay before retrying",
    requirements=["IDM-005"],
    profile=P,
    kind="negative",
)
async def retry_backs_off(ctx: CaseContext) -> None:
    checks.retry_waits(ctx, "RaiseEmergency", 0.3)
