"""Conformance cases of the safe-trip profile (spec §11) and the TEST-mode purge of trip fixes (§4.2).

Every trip is started in MODE_TEST by a traveller token minted for the case alone (a traveller has
at most one active trip per mode, and cases run concurrently), with a guardian token of its own.
Timers are read back from ``SafeTrip.timers`` (the spec puts them there so that a test can read
them); a case that would have to wait for a timer longer than a minute is skipped, saying so.
Conditions that can be produced by the fixes' times instead of by waiting (off route, location
lost) are produced that way, so that no conforming center makes the case wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc, safe_trip_pb2, safe_trip_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.expect import fail

S = safe_trip_pb2
PROFILE = "safe-trip"
#: Longest timer a case waits for; a center whose TEST timers are longer gets the case skipped.
MAX_WAIT_TIMER = timedelta(seconds=60)
#: Detection and notification latency the spec allows (§11.4), plus a margin for the network.
DETECTION = 30.0 + 5.0
ESCALATION = 5.0 + 5.0
DURESS_CODE = "4789"


def _stub(ctx: CaseContext, stub_class: Any, role: str, *, token: str | None = None) -> Any:
    """A stub as ``Any``: grpc's generated stubs are typed for sync calls, these calls are awaited."""
    return ctx.stub(stub_class, role, token=token)


def ts(moment: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(moment.astimezone(UTC))
    return out


def now() -> datetime:
    return datetime.now(UTC)


def fix(latitude: float, longitude: float, at: datetime, radius_m: float = 10.0) -> common_pb2.Location:
    return common_pb2.Location(
        latitude=latitude,
        longitude=longitude,
        radius_m=radius_m,
        method=common_pb2.POSITIONING_METHOD_GNSS,
        fix_time=ts(at),
    )


def origin(ctx: CaseContext) -> tuple[float, float]:
    where = ctx.fixtures.service_area_location or ctx.fixtures.camera_location
    if where is None:
        return (37.5729, 126.9794)
    return (where.latitude, where.longitude)


@dataclass
class Trip:
    """A trip started by a case, with its traveller's and guardian's stubs."""

    ctx: CaseContext
    traveller: Any  # SafeTripServiceStub (the generated stubs are typed for sync calls)
    guardian: Any
    guardian_subject: str
    trip: safe_trip_pb2.SafeTrip
    lat: float
    lon: float

    @property
    def name(self) -> str:
        return self.trip.name

    async def get(self, role: str = "traveller") -> safe_trip_pb2.SafeTrip:
        stub = self.traveller if role == "traveller" else self.guardian
        return await expect_ok(
            stub.GetSafeTrip(S.GetSafeTripRequest(name=self.name)), f"GetSafeTrip as {role}"
        )

    async def send(self, *locations: common_pb2.Location) -> safe_trip_pb2.UpdateTripLocationResponse:
        request = S.UpdateTripLocationRequest(
            name=self.name, request_id=self.ctx.request_id(), locations=list(locations)
        )
        return await expect_ok(self.traveller.UpdateTripLocation(request), "UpdateTripLocation")

    async def fresh_fix(self) -> safe_trip_pb2.UpdateTripLocationResponse:
        return await self.send(fix(self.lat, self.lon, now()))

    async def wait_for(
        self, predicate: object, what: str, within_s: float, role: str = "traveller"
    ) -> safe_trip_pb2.SafeTrip:
        deadline = time.monotonic() + within_s
        while True:
            trip = await self.get(role)
            if callable(predicate) and predicate(trip):
                return trip
            if time.monotonic() > deadline:
                fail(
                    f"{what} did not happen within {within_s:.0f} s; "
                    f"trip is {S.SafeTripState.Name(trip.state)}"
                )
            await asyncio.sleep(0.5)

    async def arrive(self, code: str = "") -> safe_trip_pb2.SafeTrip:
        request = S.ArriveSafeTripRequest(name=self.name, request_id=self.ctx.request_id(), code=code)
        return await expect_ok(self.traveller.ArriveSafeTrip(request), "ArriveSafeTrip")


def unique(ctx: CaseContext, prefix: str, kind: str) -> str:
    """A subject of its own for this case: resource ids are unique in the run, so cases running
    concurrently never share a traveller (who has at most one active trip per mode) or a guardian."""
    return f"{prefix}/{ctx.resource_id(kind)}"


def traveller_token(ctx: CaseContext) -> str:
    return ctx.tokens.mint("APP_USER", claims={"sub": unique(ctx, "users", "u")})


def start_request(
    ctx: CaseContext,
    lat: float,
    lon: float,
    guardian_subject: str,
    *,
    start_at: datetime | None = None,
    arrival_in: timedelta = timedelta(hours=1),
    corridor: safe_trip_pb2.RouteCorridor | None = None,
    duress_code: str | None = None,
    **extra: object,
) -> safe_trip_pb2.StartSafeTripRequest:
    start_at = start_at or now()
    request = S.StartSafeTripRequest(
        parent=ctx.center(),
        request_id=ctx.request_id(),
        mode=ctx.mode,
        start_location=fix(lat, lon, start_at),
        destination=common_pb2.Point(latitude=lat + 0.01, longitude=lon + 0.01),
        expected_arrival_time=ts(now() + arrival_in),
        guardians=[
            S.TripGuardian(display_name="엄마", phone="010-0000-0000", subject_id=guardian_subject),
            S.TripGuardian(display_name="아빠", phone="010-0000-0001"),
        ],
        profile=emergency_pb2.ConsentedProfile(
            display_name="시험", phone="010-1111-2222", consent_time=ts(now())
        ),
        **extra,  # type: ignore[arg-type]
    )
    if corridor is not None:
        request.corridor.CopyFrom(corridor)
    if duress_code is not None:
        salt = os.urandom(16)
        request.duress_verifier.salt = salt
        request.duress_verifier.duress_digest = hashlib.sha256(salt + duress_code.encode()).digest()
    return request


async def start_trip(ctx: CaseContext, **options: object) -> Trip:
    lat, lon = origin(ctx)
    guardian_subject = unique(ctx, "guardians", "g")
    traveller = _stub(ctx, safe_trip_pb2_grpc.SafeTripServiceStub, "APP_USER", token=traveller_token(ctx))
    guardian = ctx.stub(
        safe_trip_pb2_grpc.SafeTripServiceStub,
        "GUARDIAN",
        token=ctx.tokens.mint("GUARDIAN", claims={"sub": guardian_subject}),
    )
    request = start_request(ctx, lat, lon, guardian_subject, **options)  # type: ignore[arg-type]
    trip = await expect_ok(traveller.StartSafeTrip(request), "StartSafeTrip")
    started = Trip(ctx, traveller, guardian, guardian_subject, trip, lat, lon)

    async def cleanup() -> None:
        with_end = S.EndSafeTripRequest(
            name=trip.name, request_id=ctx.request_id(), note="conformance clean-up"
        )
        with contextlib.suppress(grpc.aio.AioRpcError):
            await traveller.EndSafeTrip(with_end)

    ctx.on_cleanup(cleanup)
    return started


def seconds(value: duration_pb2.Duration) -> float:
    return value.ToTimedelta().total_seconds()


def require_short(ctx: CaseContext, value: duration_pb2.Duration, what: str) -> None:
    if value.ToTimedelta() > MAX_WAIT_TIMER:
        ctx.skip(f"the TEST-mode {what} in force is {seconds(value):.0f} s; this case waits at most 60 s")


def live_alert(trip: safe_trip_pb2.SafeTrip, kind: int) -> bool:
    return trip.state == S.SAFE_TRIP_STATE_ALERTING and trip.active_alert.kind == kind


# --- start, idempotency, validation --------------------------------------------------------------


@case(
    "TC_TRIP_001_SRV",
    title="StartSafeTrip creates an ACTIVE trip with the traveller's timers in force; GetSafeTrip returns it",
    requirements=["TRIP-003", "GEN-023"],
    profile=PROFILE,
    kind="positive",
)
async def start_and_get(ctx: CaseContext) -> None:
    trip = await start_trip(
        ctx,
        overdue_grace=duration_pb2.Duration(seconds=900),
        off_route_tolerance=duration_pb2.Duration(seconds=90),
    )
    created = trip.trip
    check(
        created.name.startswith(f"{ctx.center()}/safeTrips/"),
        f"trip name {created.name!r} is not under the center",
    )
    check(created.state == S.SAFE_TRIP_STATE_ACTIVE, "a new trip must be ACTIVE")
    check(created.mode == ctx.mode, "the trip must keep the requested mode")
    check(seconds(created.timers.overdue_grace) == 900, "timers.overdue_grace must be the traveller's 15 min")
    check(
        seconds(created.timers.off_route_tolerance) == 90,
        "timers.off_route_tolerance must be the traveller's 90 s",
    )
    check(created.timers.HasField("location_silence"), "timers.location_silence must be reported")
    check(created.timers.HasField("escalation_delay"), "timers.escalation_delay must be reported")
    got = await trip.get()
    check(
        got.name == created.name and got.state == S.SAFE_TRIP_STATE_ACTIVE, "GetSafeTrip must return the trip"
    )
    check(got.HasField("last_location"), "the traveller sees the current location (the start fix)")


@case(
    "TC_TRIP_002_SRV",
    title="A StartSafeTrip retried with the same request_id returns the same trip; a second active trip "
    "is ALREADY_EXISTS naming the first",
    requirements=["TRIP-002", "IDM-002"],
    profile=PROFILE,
    kind="negative",
)
async def start_idempotent_and_single(ctx: CaseContext) -> None:
    lat, lon = origin(ctx)
    stub = _stub(ctx, safe_trip_pb2_grpc.SafeTripServiceStub, "APP_USER", token=traveller_token(ctx))
    request = start_request(ctx, lat, lon, unique(ctx, "guardians", "g"))
    first = await expect_ok(stub.StartSafeTrip(request), "StartSafeTrip")

    async def cleanup() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.EndSafeTrip(S.EndSafeTripRequest(name=first.name, request_id=ctx.request_id()))

    ctx.on_cleanup(cleanup)
    again = await expect_ok(stub.StartSafeTrip(request), "the retried StartSafeTrip")
    check(
        again.name == first.name,
        "a retry with the same request_id must return the trip the first call created",
    )
    other = S.StartSafeTripRequest()
    other.CopyFrom(request)
    other.request_id = ctx.request_id()
    error = await expect_error(
        stub.StartSafeTrip(other), code=grpc.StatusCode.ALREADY_EXISTS, reason="ALREADY_EXISTS"
    )
    check(
        error.metadata.get("safe_trip") == first.name,
        f"ErrorInfo metadata safe_trip must name the active trip, got {error.metadata!r}",
    )


@case(
    "TC_TRIP_003_SRV",
    title="StartSafeTrip without a guardian, with a guardian lacking phone and subject, or with a bad "
    "corridor fails INVALID_FIELD on that field",
    requirements=["TRIP-001"],
    profile=PROFILE,
    kind="negative",
)
async def start_invalid_guardians_corridor(ctx: CaseContext) -> None:
    lat, lon = origin(ctx)
    stub = _stub(ctx, safe_trip_pb2_grpc.SafeTripServiceStub, "APP_USER", token=traveller_token(ctx))

    def base() -> safe_trip_pb2.StartSafeTripRequest:
        return start_request(ctx, lat, lon, unique(ctx, "guardians", "g"))

    no_guardian = base()
    del no_guardian.guardians[:]
    await expect_error(
        stub.StartSafeTrip(no_guardian),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="guardians",
    )
    unreachable = base()
    unreachable.guardians[0].phone = ""
    unreachable.guardians[0].subject_id = ""
    error = await expect_error(
        stub.StartSafeTrip(unreachable), code=grpc.StatusCode.INVALID_ARGUMENT, reason="INVALID_FIELD"
    )
    # A message-level rule of TripGuardian: reported on the guardian or on a field it reads (ERR-003).
    named = {v.field for v in error.field_violations}
    check(
        bool(named & {"guardians[0]", "guardians[0].phone", "guardians[0].subject_id"}),
        f"no field violation for guardian 0 without phone and subject_id; violations name {sorted(named)}",
    )
    one_point = base()
    one_point.corridor.polyline.add(latitude=lat, longitude=lon)
    one_point.corridor.width_m = 100
    await expect_error(
        stub.StartSafeTrip(one_point),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="corridor.polyline",
    )
    narrow = base()
    narrow.corridor.polyline.add(latitude=lat, longitude=lon)
    narrow.corridor.polyline.add(latitude=lat + 0.01, longitude=lon)
    narrow.corridor.width_m = 10
    await expect_error(
        stub.StartSafeTrip(narrow),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="corridor.width_m",
    )


@case(
    "TC_TRIP_004_SRV",
    title="StartSafeTrip with an expected arrival before the start fix, more than 12 h after it, or in the "
    "center's past fails INVALID_FIELD",
    requirements=["TRIP-001", "GEN-010"],
    profile=PROFILE,
    kind="negative",
)
async def start_invalid_times(ctx: CaseContext) -> None:
    lat, lon = origin(ctx)
    stub = _stub(ctx, safe_trip_pb2_grpc.SafeTripServiceStub, "APP_USER", token=traveller_token(ctx))
    guardian = unique(ctx, "guardians", "g")
    before_fix = start_request(ctx, lat, lon, guardian, start_at=now() + timedelta(minutes=30))
    before_fix.expected_arrival_time.CopyFrom(ts(now() + timedelta(minutes=10)))
    await expect_error(
        stub.StartSafeTrip(before_fix), code=grpc.StatusCode.INVALID_ARGUMENT, reason="INVALID_FIELD"
    )
    too_long = start_request(ctx, lat, lon, guardian, arrival_in=timedelta(hours=13))
    await expect_error(
        stub.StartSafeTrip(too_long), code=grpc.StatusCode.INVALID_ARGUMENT, reason="INVALID_FIELD"
    )
    past = start_request(ctx, lat, lon, guardian, start_at=now() - timedelta(hours=2))
    past.expected_arrival_time.CopyFrom(ts(now() - timedelta(minutes=30)))
    await expect_error(
        stub.StartSafeTrip(past),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="expected_arrival_time",
    )
    no_mode = start_request(ctx, lat, lon, guardian)
    no_mode.mode = common_pb2.MODE_UNSPECIFIED
    await expect_error(
        stub.StartSafeTrip(no_mode),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="mode",
    )


@case(
    "TC_TRIP_005_SRV",
    title="A request_id reused with another payload is refused; GetSafeTrip of a malformed or unknown "
    "name fails",
    requirements=["IDM-003", "GEN-023"],
    profile=PROFILE,
    kind="negative",
)
async def reuse_and_names(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    request_id = ctx.request_id()
    first = S.UpdateTripLocationRequest(
        name=trip.name, request_id=request_id, locations=[fix(trip.lat, trip.lon, now())]
    )
    await expect_ok(trip.traveller.UpdateTripLocation(first), "UpdateTripLocation")
    second = S.UpdateTripLocationRequest(
        name=trip.name, request_id=request_id, locations=[fix(trip.lat + 0.001, trip.lon, now())]
    )
    await expect_error(
        trip.traveller.UpdateTripLocation(second),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="REQUEST_ID_REUSED",
    )
    await expect_error(
        trip.traveller.GetSafeTrip(
            S.GetSafeTripRequest(name=f"{ctx.center()}/safeTrips/{ctx.resource_id('nope')}")
        ),
        code=grpc.StatusCode.NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
    )
    await expect_error(
        trip.traveller.GetSafeTrip(S.GetSafeTripRequest(name="safeTrips/Not_A_Name")),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="name",
    )


# --- location, arrival, end ------------------------------------------------------------------------


@case(
    "TC_TRIP_006_SRV",
    title="UpdateTripLocation accepts a batch in any order and keeps the fix with the latest fix_time "
    "as current",
    requirements=["LOC-004", "APP-011"],
    profile=PROFILE,
    kind="positive",
)
async def update_location_order(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    t = now()
    newest = fix(trip.lat + 0.0002, trip.lon, t)
    older = fix(trip.lat + 0.0001, trip.lon, t - timedelta(seconds=5))
    response = await trip.send(newest, older)
    check(response.accepted_count == 2, f"accepted_count must be 2, got {response.accepted_count}")
    current = response.safe_trip.last_location
    check(current.fix_time == newest.fix_time, "last_location must be the fix with the latest fix_time")
    late = fix(trip.lat + 0.0003, trip.lon, t - timedelta(seconds=20))
    response = await trip.send(late)
    check(
        response.safe_trip.last_location.fix_time == newest.fix_time,
        "a fix older than the current one must not replace it (LOC-004)",
    )


@case(
    "TC_TRIP_007_SRV",
    title="ArriveSafeTrip ends the trip ARRIVED with end_time; every later change is FAILED_PRECONDITION / "
    "TRIP_NOT_ACTIVE",
    requirements=["TRIP-011", "TRIP-012"],
    profile=PROFILE,
    kind="negative",
)
async def arrive_then_not_active(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    arrived = await trip.arrive()
    check(arrived.state == S.SAFE_TRIP_STATE_ARRIVED, "ArriveSafeTrip must move the trip to ARRIVED")
    check(arrived.HasField("end_time"), "ArriveSafeTrip must set end_time")
    stub, name = trip.traveller, trip.name
    calls = {
        "UpdateTripLocation": stub.UpdateTripLocation(
            S.UpdateTripLocationRequest(
                name=name, request_id=ctx.request_id(), locations=[fix(trip.lat, trip.lon, now())]
            )
        ),
        "ExtendSafeTrip": stub.ExtendSafeTrip(
            S.ExtendSafeTripRequest(
                name=name, request_id=ctx.request_id(), expected_arrival_time=ts(now() + timedelta(hours=1))
            )
        ),
        "ArriveSafeTrip": stub.ArriveSafeTrip(
            S.ArriveSafeTripRequest(name=name, request_id=ctx.request_id())
        ),
        "EndSafeTrip": stub.EndSafeTrip(S.EndSafeTripRequest(name=name, request_id=ctx.request_id())),
        "ResolveTripAlert": stub.ResolveTripAlert(
            S.ResolveTripAlertRequest(
                name=name, request_id=ctx.request_id(), action=S.TRIP_ALERT_ACTION_CLEAR
            )
        ),
    }
    for what, call in calls.items():
        await expect_error(
            call, code=grpc.StatusCode.FAILED_PRECONDITION, reason="TRIP_NOT_ACTIVE", what=what
        )
    after = await trip.get()
    check(after.state == S.SAFE_TRIP_STATE_ARRIVED, "the refused calls must not change the trip")


@case(
    "TC_TRIP_008_SRV",
    title="WatchSafeTrip sends a SNAPSHOT (replay) first, then EXTENDED and FINISHED with consecutive "
    "sequences, and ends with OK",
    requirements=["TRIP-016", "TRIP-012", "STM-001"],
    profile=PROFILE,
    kind="positive",
)
async def watch_snapshot_to_finished(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    stream = trip.traveller.WatchSafeTrip(S.WatchSafeTripRequest(name=trip.name))
    first = await ctx.read_stream(stream, 1)
    check(len(first) == 1, "WatchSafeTrip sent nothing within 5 s")
    snapshot = first[0]
    check(
        snapshot.type == S.SAFE_TRIP_EVENT_TYPE_SNAPSHOT and snapshot.replay,
        "the first event must be a replayed SNAPSHOT",
    )
    check(bool(snapshot.cursor), "every event must carry a cursor")
    await expect_ok(
        trip.traveller.ExtendSafeTrip(
            S.ExtendSafeTripRequest(
                name=trip.name,
                request_id=ctx.request_id(),
                expected_arrival_time=ts(now() + timedelta(hours=2)),
            )
        ),
        "ExtendSafeTrip",
    )
    await expect_ok(
        trip.traveller.EndSafeTrip(
            S.EndSafeTripRequest(name=trip.name, request_id=ctx.request_id(), note="택시 탑승")
        ),
        "EndSafeTrip",
    )
    rest = await ctx.read_stream(stream, 10, wait_s=10)
    types = [e.type for e in rest]
    check(S.SAFE_TRIP_EVENT_TYPE_EXTENDED in types, f"no EXTENDED event, got {types}")
    check(
        bool(rest) and rest[-1].type == S.SAFE_TRIP_EVENT_TYPE_FINISHED,
        f"the last event must be FINISHED, got {types}",
    )
    previous = snapshot.sequence
    for event in rest:
        check(event.sequence == previous + 1, f"sequence {event.sequence} does not follow {previous}")
        previous = event.sequence
    check(rest[-1].safe_trip.state == S.SAFE_TRIP_STATE_ENDED, "FINISHED must carry the ENDED trip")
    code = await stream.code()
    check(code == grpc.StatusCode.OK, f"the stream must end with OK after FINISHED, got {code}")


@case(
    "TC_TRIP_009_SRV",
    title="WatchSafeTrip with a cursor the center did not issue fails INVALID_ARGUMENT / CURSOR_INVALID",
    requirements=["STM-003"],
    profile=PROFILE,
    kind="negative",
)
async def watch_bad_cursor(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    stream = trip.traveller.WatchSafeTrip(
        S.WatchSafeTripRequest(name=trip.name, resume_cursor="not-a-cursor-of-yours")
    )
    await expect_error(stream.read(), code=grpc.StatusCode.INVALID_ARGUMENT, reason="CURSOR_INVALID")


# --- authorization -----------------------------------------------------------------------------------


@case(
    "TC_TRIP_010_SRV",
    title="GetSafeTrip, WatchSafeTrip and ResolveTripAlert by another app user, an unnamed guardian or an "
    "operator of another center fail NOT_OWNER",
    requirements=["TRIP-015"],
    profile=PROFILE,
    kind="negative",
)
async def not_owner(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    strangers = {
        "another app user": ctx.stub(
            safe_trip_pb2_grpc.SafeTripServiceStub, "APP_USER", token=traveller_token(ctx)
        ),
        "an unnamed guardian": ctx.stub(
            safe_trip_pb2_grpc.SafeTripServiceStub,
            "GUARDIAN",
            token=ctx.tokens.mint("GUARDIAN", claims={"sub": unique(ctx, "guardians", "x")}),
        ),
        "an operator of another center": ctx.stub(
            safe_trip_pb2_grpc.SafeTripServiceStub,
            "CENTER_OPERATOR",
            token=ctx.tokens.mint("CENTER_OPERATOR", claims={"center": f"centers/{ctx.resource_id('c')}"}),
        ),
    }
    for who, stub in strangers.items():
        await expect_error(
            stub.GetSafeTrip(S.GetSafeTripRequest(name=trip.name)),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="NOT_OWNER",
            what=f"GetSafeTrip by {who}",
        )
        await expect_error(
            stub.ResolveTripAlert(
                S.ResolveTripAlertRequest(
                    name=trip.name, request_id=ctx.request_id(), action=S.TRIP_ALERT_ACTION_ESCALATE_NOW
                )
            ),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="NOT_OWNER",
            what=f"ResolveTripAlert by {who}",
        )
        watch = stub.WatchSafeTrip(S.WatchSafeTripRequest(name=trip.name))
        await expect_error(
            watch.read(),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="NOT_OWNER",
            what=f"WatchSafeTrip by {who}",
        )
    other_user = strangers["another app user"]
    await expect_error(
        other_user.UpdateTripLocation(
            S.UpdateTripLocationRequest(
                name=trip.name, request_id=ctx.request_id(), locations=[fix(trip.lat, trip.lon, now())]
            )
        ),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="UpdateTripLocation by another app user",
    )
    check((await trip.get()).state == S.SAFE_TRIP_STATE_ACTIVE, "the refused calls must not change the trip")


@case(
    "TC_TRIP_011_SRV",
    title="Officers, auditors and peer centers may not call SafeTripService; guardians may not start "
    "or end trips",
    requirements=["SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def roles_denied(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    for role in ("POLICE_OFFICER", "AUDITOR", "PEER_CENTER"):
        stub = _stub(ctx, safe_trip_pb2_grpc.SafeTripServiceStub, role)
        await expect_error(
            stub.GetSafeTrip(S.GetSafeTripRequest(name=trip.name)),
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"GetSafeTrip by {role}",
        )
    lat, lon = origin(ctx)
    await expect_error(
        trip.guardian.StartSafeTrip(start_request(ctx, lat, lon, trip.guardian_subject)),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="StartSafeTrip by a guardian",
    )
    await expect_error(
        trip.guardian.EndSafeTrip(S.EndSafeTripRequest(name=trip.name, request_id=ctx.request_id())),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="EndSafeTrip by a guardian",
    )


@case(
    "TC_TRIP_012_SRV",
    title="A named guardian sees the trip without the profile, the other guardians' contacts and, once it "
    "ended, its location",
    requirements=["TRIP-015"],
    profile=PROFILE,
    kind="positive",
)
async def guardian_view(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    seen = await trip.get("guardian")
    check(not seen.HasField("profile"), "a guardian's view must not contain the profile")
    others = [g for g in seen.guardians if g.subject_id != trip.guardian_subject]
    check(
        all(not g.phone and not g.subject_id for g in others),
        "other guardians' phone and subject_id must be empty",
    )
    check(seen.HasField("last_location"), "a guardian of an active trip sees its current location")
    await trip.arrive()
    ended = await trip.get("guardian")
    check(ended.state == S.SAFE_TRIP_STATE_ARRIVED, "the guardian sees the arrival")
    check(
        not ended.HasField("last_location"),
        "a guardian's view of a finished trip must not contain last_location",
    )


# --- alerts, clearing, escalation ---------------------------------------------------------------------


@case(
    "TC_TRIP_013_SRV",
    title="ResolveTripAlert CLEAR on an ACTIVE trip fails FAILED_PRECONDITION / INVALID_STATE_TRANSITION",
    requirements=["TRIP-010"],
    profile=PROFILE,
    kind="negative",
)
async def clear_without_alert(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    response = await trip.fresh_fix()
    if response.safe_trip.state != S.SAFE_TRIP_STATE_ACTIVE:
        fail("a trip with a fresh fix, hours before its expected arrival, must be ACTIVE")
    await expect_error(
        trip.traveller.ResolveTripAlert(
            S.ResolveTripAlertRequest(
                name=trip.name, request_id=ctx.request_id(), action=S.TRIP_ALERT_ACTION_CLEAR
            )
        ),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="INVALID_STATE_TRANSITION",
    )


@case(
    "TC_TRIP_014_SRV",
    title="ESCALATE_NOW escalates at once to a SAFE_TRIP_OVERDUE emergency; later actions fail "
    "INVALID_STATE_TRANSITION; arriving leaves the emergency open",
    requirements=["TRIP-010", "TRIP-008", "TRIP-012"],
    profile=PROFILE,
    kind="positive",
)
async def escalate_now(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    await trip.fresh_fix()
    answer = await expect_ok(
        trip.guardian.ResolveTripAlert(
            S.ResolveTripAlertRequest(
                name=trip.name,
                request_id=ctx.request_id(),
                action=S.TRIP_ALERT_ACTION_ESCALATE_NOW,
                note="도와주세요",
            )
        ),
        "ResolveTripAlert ESCALATE_NOW by the guardian",
    )
    escalated = answer
    if answer.state != S.SAFE_TRIP_STATE_ESCALATED:
        escalated = await trip.wait_for(
            lambda t: t.state == S.SAFE_TRIP_STATE_ESCALATED, "escalation after ESCALATE_NOW", ESCALATION
        )
    check(
        escalated.active_alert.kind == S.TRIP_ALERT_KIND_HELP_REQUESTED,
        "ESCALATE_NOW without an open alert must record a HELP_REQUESTED alert",
    )
    check(bool(escalated.emergency), "an ESCALATED trip must name its emergency")
    await expect_error(
        trip.traveller.ResolveTripAlert(
            S.ResolveTripAlertRequest(
                name=trip.name, request_id=ctx.request_id(), action=S.TRIP_ALERT_ACTION_CLEAR
            )
        ),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="INVALID_STATE_TRANSITION",
    )
    emergencies = _stub(ctx, emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
    emergency = await expect_ok(
        emergencies.GetEmergency(emergency_pb2.GetEmergencyRequest(name=escalated.emergency)), "GetEmergency"
    )
    check(
        emergency.kind == emergency_pb2.EMERGENCY_KIND_SAFE_TRIP_OVERDUE,
        "the emergency must be SAFE_TRIP_OVERDUE",
    )
    check(emergency.mode == ctx.mode, "the emergency must have the trip's mode")
    check(emergency.safe_trip == trip.name, "the emergency's safe_trip must name the trip")
    ctx.on_cleanup(lambda: _cancel(ctx, emergencies, emergency.name))
    arrived = await trip.arrive()
    check(arrived.state == S.SAFE_TRIP_STATE_ARRIVED, "ArriveSafeTrip on an ESCALATED trip must end the trip")
    after = await expect_ok(emergencies.GetEmergency(emergency_pb2.GetEmergencyRequest(name=emergency.name)))
    check(
        after.state == emergency.state or after.state not in _ENDED,
        "arriving must not end the trip's emergency",
    )


_ENDED = (emergency_pb2.EMERGENCY_STATE_RESOLVED, emergency_pb2.EMERGENCY_STATE_CANCELLED)


async def _cancel(ctx: CaseContext, stub: Any, name: str) -> None:
    request = emergency_pb2.UpdateEmergencyStateRequest(
        name=name,
        request_id=ctx.request_id(),
        state=emergency_pb2.EMERGENCY_STATE_RESOLVED,
        note="conformance clean-up",
    )
    with contextlib.suppress(grpc.aio.AioRpcError):
        await stub.UpdateEmergencyState(request)


@case(
    "TC_TRIP_015_SRV",
    title="A trip whose latest fix is older than location_silence alerts LOCATION_LOST, tells the guardians, "
    "and a fresh fix returns it to ACTIVE",
    requirements=["TRIP-006", "TRIP-007"],
    profile=PROFILE,
    kind="positive",
    timeout=60,
)
async def location_lost_and_back(ctx: CaseContext) -> None:
    # The start fix is older than any allowed location_silence (at most 900 s), so no waiting.
    trip = await start_trip(ctx, start_at=now() - timedelta(seconds=905))
    guardian_watch = trip.guardian.WatchSafeTrip(S.WatchSafeTripRequest(name=trip.name))
    alerted = await trip.wait_for(
        lambda t: live_alert(t, S.TRIP_ALERT_KIND_LOCATION_LOST) and t.active_alert.HasField("notify_time"),
        "LOCATION_LOST alert with its notification",
        DETECTION,
    )
    # A fresh fix first: the escalation may be only seconds away (TEST-mode timers).
    response = await trip.fresh_fix()
    back = response.safe_trip
    alert = alerted.active_alert
    if back.state == S.SAFE_TRIP_STATE_ESCALATED:
        if now() >= alert.escalate_time.ToDatetime(tzinfo=UTC):
            ctx.skip("the TEST escalation_delay in force is too short to clear the alert before it escalates")
            return
        fail("the trip escalated before its escalate_time")
    if back.state != S.SAFE_TRIP_STATE_ACTIVE:
        back = await trip.wait_for(
            lambda t: t.state == S.SAFE_TRIP_STATE_ACTIVE, "return to ACTIVE", DETECTION
        )
    check(
        alert.notified_guardian_count == 2,
        f"both guardians must be told, got {alert.notified_guardian_count}",
    )
    expected = alert.notify_time.ToDatetime() + alerted.timers.escalation_delay.ToTimedelta()
    check(
        alert.escalate_time.ToDatetime() == expected,
        "escalate_time must be notify_time plus escalation_delay",
    )
    events = await ctx.read_stream(guardian_watch, 8, wait_s=4)
    types = [e.type for e in events]
    check(
        S.SAFE_TRIP_EVENT_TYPE_ALERT_RAISED in types,
        f"the guardian's WatchSafeTrip must get ALERT_RAISED, got {types}",
    )
    check(
        S.SAFE_TRIP_EVENT_TYPE_ALERT_CLEARED in types,
        f"the guardian's WatchSafeTrip must get ALERT_CLEARED, got {types}",
    )
    guardian_watch.cancel()
    check(not back.HasField("active_alert"), "an ACTIVE trip has no open alert")


@case(
    "TC_TRIP_016_SRV",
    title="Fixes outside the corridor for longer than off_route_tolerance alert OFF_ROUTE; the same fixes on "
    "a trip without a corridor do not",
    requirements=["TRIP-005", "TRIP-014"],
    profile=PROFILE,
    kind="positive",
    timeout=60,
)
async def off_route(ctx: CaseContext) -> None:
    lat, lon = origin(ctx)
    corridor = S.RouteCorridor(
        polyline=[
            common_pb2.Point(latitude=lat, longitude=lon),
            common_pb2.Point(latitude=lat + 0.01, longitude=lon),
        ],
        width_m=100,
    )
    t = now()
    start = t - timedelta(seconds=120)
    away = lon + 0.02  # about 1.8 km east of the route
    fixes = [fix(lat, away, t - timedelta(seconds=s)) for s in (70, 40, 10, 0)]
    # Each trip gets its fixes right after it starts: its start fix is older than a TEST
    # location_silence, so a LOCATION_LOST alert may open in between, and must not escalate first.
    with_route = await start_trip(
        ctx, start_at=start, corridor=corridor, off_route_tolerance=duration_pb2.Duration(seconds=60)
    )
    await with_route.send(*fixes)
    without = await start_trip(ctx, start_at=start)
    await without.send(*fixes)
    await with_route.wait_for(
        lambda tr: live_alert(tr, S.TRIP_ALERT_KIND_OFF_ROUTE), "OFF_ROUTE alert", DETECTION
    )
    plain = await without.get()
    check(
        not (
            plain.state == S.SAFE_TRIP_STATE_ALERTING
            and plain.active_alert.kind == S.TRIP_ALERT_KIND_OFF_ROUTE
        ),
        "a trip without a corridor must never alert OFF_ROUTE",
    )
    # Back inside and arrived away from the destination: the traveller's word ends the trip (TRIP-014).
    arrived = await without.arrive()
    check(arrived.state == S.SAFE_TRIP_STATE_ARRIVED, "ArriveSafeTrip ends the trip wherever she is")


@case(
    "TC_TRIP_017_SRV",
    title="An alert nobody clears escalates after escalation_delay to a SAFE_TRIP_OVERDUE emergency "
    "(ESCALATED)",
    requirements=["TRIP-008", "TRIP-007"],
    profile=PROFILE,
    kind="positive",
    timeout=120,
)
async def escalation_by_timer(ctx: CaseContext) -> None:
    trip = await start_trip(ctx, start_at=now() - timedelta(seconds=905))
    require_short(ctx, trip.trip.timers.escalation_delay, "escalation_delay")
    watch = trip.traveller.WatchSafeTrip(S.WatchSafeTripRequest(name=trip.name))
    alerted = await trip.wait_for(lambda t: t.state != S.SAFE_TRIP_STATE_ACTIVE, "an alert", DETECTION)
    wait = seconds(alerted.timers.escalation_delay) + DETECTION + ESCALATION
    escalated = await trip.wait_for(lambda t: t.state == S.SAFE_TRIP_STATE_ESCALATED, "escalation", wait)
    check(bool(escalated.emergency), "an ESCALATED trip must name its emergency")
    events = await ctx.read_stream(watch, 10, wait_s=3)
    check(
        any(e.type == S.SAFE_TRIP_EVENT_TYPE_ESCALATED for e in events), "WatchSafeTrip must send ESCALATED"
    )
    watch.cancel()
    emergencies = _stub(ctx, emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
    emergency = await expect_ok(
        emergencies.GetEmergency(emergency_pb2.GetEmergencyRequest(name=escalated.emergency))
    )
    ctx.on_cleanup(lambda: _cancel(ctx, emergencies, emergency.name))
    check(
        emergency.kind == emergency_pb2.EMERGENCY_KIND_SAFE_TRIP_OVERDUE,
        "the emergency must be SAFE_TRIP_OVERDUE",
    )
    check(emergency.safe_trip == trip.name, "the emergency's safe_trip must name the trip")


@case(
    "TC_TRIP_018_SRV",
    title="An OVERDUE alert opens after expected arrival plus grace; ExtendSafeTrip returns the trip "
    "to ACTIVE",
    requirements=["TRIP-004", "TRIP-009"],
    profile=PROFILE,
    kind="positive",
    timeout=120,
)
async def overdue_then_extend(ctx: CaseContext) -> None:
    trip = await start_trip(ctx, arrival_in=timedelta(seconds=3))
    require_short(ctx, trip.trip.timers.overdue_grace, "overdue_grace")
    require_short(ctx, trip.trip.timers.location_silence, "location_silence")
    deadline = seconds(trip.trip.timers.overdue_grace) + 3 + DETECTION
    start = time.monotonic()
    while True:  # keep the location fresh so that only the arrival time can make it alert
        current = (await trip.fresh_fix()).safe_trip
        if current.state == S.SAFE_TRIP_STATE_ALERTING:
            break
        if time.monotonic() - start > deadline:
            fail(f"no OVERDUE alert within {deadline:.0f} s of the start")
        await asyncio.sleep(1)
    check(current.active_alert.kind == S.TRIP_ALERT_KIND_OVERDUE, "the alert must be OVERDUE")
    extended = await expect_ok(
        trip.traveller.ExtendSafeTrip(
            S.ExtendSafeTripRequest(
                name=trip.name,
                request_id=ctx.request_id(),
                expected_arrival_time=ts(now() + timedelta(hours=1)),
            )
        ),
        "ExtendSafeTrip",
    )
    check(
        extended.state == S.SAFE_TRIP_STATE_ACTIVE,
        "ExtendSafeTrip past the clock must return the trip to ACTIVE",
    )


@case(
    "TC_TRIP_019_SRV",
    title="An arrival with the duress code looks normal to the traveller and raises a silent duress "
    "emergency for the trip within 5 s",
    requirements=["TRIP-013"],
    profile=PROFILE,
    kind="positive",
    timeout=60,
)
async def duress_arrival(ctx: CaseContext) -> None:
    trip = await start_trip(ctx, duress_code=DURESS_CODE)
    arrived = await trip.arrive(code=DURESS_CODE)
    check(arrived.state == S.SAFE_TRIP_STATE_ARRIVED, "a duress arrival must look like an arrival")
    check(not arrived.emergency, "the traveller's view of a duress arrival must not name an emergency")
    seen = await trip.get("guardian")
    check(
        seen.state == S.SAFE_TRIP_STATE_ARRIVED and not seen.emergency,
        "the guardian must see a normal arrival",
    )
    response = await trip.fresh_fix()  # she may keep sending after a duress end
    check(response.accepted_count == 1, "fixes after a duress arrival must be accepted")
    emergencies = _stub(ctx, emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
    deadline = time.monotonic() + ESCALATION
    found: emergency_pb2.Emergency | None = None
    while found is None and time.monotonic() < deadline:
        page = await expect_ok(
            emergencies.ListEmergencies(
                emergency_pb2.ListEmergenciesRequest(parent=ctx.center(), page_size=100)
            )
        )
        found = next((e for e in page.emergencies if e.safe_trip == trip.name), None)
        if found is None:
            await asyncio.sleep(0.5)
    if found is None:
        fail("no emergency for the trip within 5 s of the duress arrival")
    assert found is not None
    ctx.on_cleanup(lambda: _cancel(ctx, emergencies, found.name))
    check(
        found.kind == emergency_pb2.EMERGENCY_KIND_SILENT_SOS,
        "a duress arrival raises a SILENT_SOS emergency",
    )
    check(found.duress, "the emergency of a duress arrival must have duress true")


# --- retention ---------------------------------------------------------------------------------------


@case(
    "TC_PRV_001_SRV",
    title="The fixes of an ended TEST-mode trip are purged after the declared TEST retention and no "
    "longer returned",
    requirements=["PRV-015", "PRV-011", "PRV-010"],
    profile=PROFILE,
    kind="positive",
    timeout=90,
)
async def test_trip_fixes_purged(ctx: CaseContext) -> None:
    retention = ctx.declaration.test_retention_seconds
    if retention is None or retention > 40:
        ctx.skip("test_retention_seconds is not declared or longer than 40 s")
        return
    trip = await start_trip(ctx)
    await trip.fresh_fix()
    ended = await expect_ok(
        trip.traveller.EndSafeTrip(S.EndSafeTripRequest(name=trip.name, request_id=ctx.request_id())),
        "EndSafeTrip",
    )
    check(ended.HasField("last_location"), "before the purge the traveller still sees the last location")
    gone = await trip.wait_for(
        lambda t: not t.HasField("last_location"), "the purge of the trip's fixes", retention + 30
    )
    check(gone.state == S.SAFE_TRIP_STATE_ENDED, "the purge removes the fixes, not the trip")


@case(
    "TC_TRIP_020_SRV",
    title="While a trip is ESCALATED, every fix accepted by UpdateTripLocation becomes a fix of the "
    "trip's emergency",
    requirements=["TRIP-018"],
    profile=PROFILE,
    kind="positive",
)
async def escalated_fixes_feed_the_emergency(ctx: CaseContext) -> None:
    trip = await start_trip(ctx)
    await trip.fresh_fix()
    answer = await expect_ok(
        trip.guardian.ResolveTripAlert(
            S.ResolveTripAlertRequest(
                name=trip.name, request_id=ctx.request_id(), action=S.TRIP_ALERT_ACTION_ESCALATE_NOW
            )
        ),
        "ResolveTripAlert ESCALATE_NOW by the guardian",
    )
    escalated = answer
    if answer.state != S.SAFE_TRIP_STATE_ESCALATED or not answer.emergency:
        escalated = await trip.wait_for(
            lambda t: t.state == S.SAFE_TRIP_STATE_ESCALATED and bool(t.emergency),
            "escalation after ESCALATE_NOW",
            ESCALATION,
        )
    emergencies = _stub(ctx, emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
    ctx.on_cleanup(lambda: _cancel(ctx, emergencies, escalated.emergency))
    get = emergency_pb2.GetEmergencyRequest(name=escalated.emergency)
    before = await expect_ok(emergencies.GetEmergency(get), "GetEmergency of the trip's emergency")
    # A fix newer than any the emergency holds, at a position it has not seen.
    moved = fix(trip.lat + 0.0004, trip.lon + 0.0004, now() + timedelta(seconds=1))
    await trip.send(moved)
    deadline = time.monotonic() + 5.0
    while True:
        after = await expect_ok(emergencies.GetEmergency(get), "GetEmergency after UpdateTripLocation")
        arrived = after.last_location.fix_time == moved.fix_time
        counted = after.location_summary.fix_count > before.location_summary.fix_count
        if arrived and counted:
            break
        if time.monotonic() > deadline:
            fail(
                "a fix accepted by UpdateTripLocation while the trip is ESCALATED did not reach the "
                f"emergency within 5 s (fix_count {before.location_summary.fix_count} → "
                f"{after.location_summary.fix_count}; last fix_time unchanged: {not arrived})"
            )
        await asyncio.sleep(0.3)
    check(
        abs(after.last_location.latitude - moved.latitude) < 1e-9,
        "the emergency's current location must be the trip's newest fix",
    )
