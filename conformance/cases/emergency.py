"""Conformance cases of EmergencyService (spec §10) for the center-core profile, with the generic
rules they exercise through RaiseEmergency (mode GEN-010, locations LOC-001..004, idempotency
IDM-001..003, error model ERR-003/ERR-008, authorization SEC-010/SEC-011, resumable streams STM-*).

Every emergency is raised in MODE_TEST by a reporter token minted for the case alone (a reporter has
at most one active emergency per mode, EMG-004, and cases run concurrently) and is ended at clean-up.
The helpers here are shared with conformance/cases/dispatch.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, emergency_pb2, emergency_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.expect import fail
from conformance.recorder import to_json

E = emergency_pb2
D = dispatch_pb2
PROFILE = "center-core"
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ACTIVE = {
    E.EMERGENCY_STATE_PENDING,
    E.EMERGENCY_STATE_RAISED,
    E.EMERGENCY_STATE_ACKNOWLEDGED,
    E.EMERGENCY_STATE_DISPATCHED,
    E.EMERGENCY_STATE_ON_SCENE,
}
DURESS_CODE = "739104"
#: A legal-dong code of 종로구 (the demo's camera location lies there); only used as a civic address.
CIVIC = common_pb2.CivicAddress(road_address="서울특별시 종로구 세종대로 175", legal_dong_code="1111011900")


# --- helpers -----------------------------------------------------------------------------------------


def ts(moment: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(moment.astimezone(UTC))
    return out


def now() -> datetime:
    return datetime.now(UTC)


def to_dt(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def where(ctx: CaseContext) -> tuple[float, float]:
    spot = ctx.fixtures.camera_location or ctx.fixtures.service_area_location
    return (spot.latitude, spot.longitude) if spot is not None else (37.5729, 126.9794)


def fix(ctx: CaseContext, at: datetime | None = None, north_m: float = 0.0) -> common_pb2.Location:
    lat, lon = where(ctx)
    return common_pb2.Location(
        latitude=lat + north_m / 111_000.0,
        longitude=lon,
        radius_m=10.0,
        method=common_pb2.POSITIONING_METHOD_GNSS,
        fix_time=ts(at or now()),
    )


def police_agency(ctx: CaseContext) -> str:
    agency = ctx.fixtures.agencies.get("POLICE_112")
    if not agency:
        ctx.skip("the declaration has no fixtures.agencies.POLICE_112")
    return str(agency)


def fire_agency(ctx: CaseContext) -> str:
    agency = ctx.fixtures.agencies.get("FIRE_119")
    if not agency:
        ctx.skip("the declaration has no fixtures.agencies.FIRE_119")
    return str(agency)


def verifier(code: str = DURESS_CODE) -> E.DuressVerifier:
    salt = os.urandom(16)
    return E.DuressVerifier(salt=salt, duress_digest=hashlib.sha256(salt + code.encode("utf-8")).digest())


def operator(ctx: CaseContext) -> emergency_pb2_grpc.EmergencyServiceAsyncStub:
    return ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")


def officer_emergencies(
    ctx: CaseContext, role: str = "POLICE_OFFICER"
) -> emergency_pb2_grpc.EmergencyServiceAsyncStub:
    return ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, role)


def dispatches(ctx: CaseContext, role: str = "POLICE_OFFICER") -> dispatch_pb2_grpc.DispatchServiceAsyncStub:
    return ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, role)


@dataclass
class Reporter:
    """An APP_USER of its own, minted for one case."""

    ctx: CaseContext
    stub: emergency_pb2_grpc.EmergencyServiceAsyncStub
    token: str
    raised: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, ctx: CaseContext) -> Reporter:
        # resource ids are unique in the run; the case id makes the reporter readable in logs
        subject = f"users/{ctx.resource_id('u')}-{ctx.case_id.lower().replace('_', '-')}"
        token = ctx.tokens.mint("APP_USER", claims={"sub": subject})
        reporter = cls(ctx, ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "APP_USER", token=token), token)
        ctx.on_cleanup(reporter.end_all)
        return reporter

    def request(self, **fields: Any) -> E.RaiseEmergencyRequest:
        request = E.RaiseEmergencyRequest(
            parent=self.ctx.center(),
            request_id=self.ctx.request_id(),
            mode=self.ctx.mode,
            kind=E.EMERGENCY_KIND_APP_SOS,
            location=fix(self.ctx),
        )
        for key, value in fields.items():
            if isinstance(value, (list, tuple)):
                getattr(request, key).extend(value)
            elif hasattr(value, "DESCRIPTOR"):
                getattr(request, key).CopyFrom(value)
            else:
                setattr(request, key, value)
        return request

    async def raise_(self, request: E.RaiseEmergencyRequest | None = None, **fields: Any) -> E.Emergency:
        emergency = await expect_ok(
            self.stub.RaiseEmergency(request or self.request(**fields)), "RaiseEmergency (TEST mode)"
        )
        if emergency.name not in self.raised:
            self.raised.append(emergency.name)
        return emergency

    async def cancel(
        self,
        name: str,
        code: str = "",
        reason: E.EmergencyCancelReason.ValueType = E.EMERGENCY_CANCEL_REASON_SAFE_NOW,
    ) -> E.Emergency:
        request = E.CancelEmergencyRequest(
            name=name, request_id=self.ctx.request_id(), reason=reason, code=code
        )
        return await expect_ok(self.stub.CancelEmergency(request), "CancelEmergency by the reporter")

    async def get(self, name: str) -> E.Emergency:
        return await expect_ok(
            self.stub.GetEmergency(E.GetEmergencyRequest(name=name)), "GetEmergency by the reporter"
        )

    async def end_all(self) -> None:
        """Clean-up: the reporter cancels; an operator resolves what stays active for operators."""
        ops = operator(self.ctx)
        for name in self.raised:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.stub.CancelEmergency(
                    E.CancelEmergencyRequest(
                        name=name, request_id=self.ctx.request_id(), reason=E.EMERGENCY_CANCEL_REASON_OTHER
                    )
                )
            with contextlib.suppress(grpc.aio.AioRpcError):
                await ops.UpdateEmergencyState(
                    E.UpdateEmergencyStateRequest(
                        name=name,
                        request_id=self.ctx.request_id(),
                        state=E.EMERGENCY_STATE_RESOLVED,
                        note="conformance clean-up",
                    )
                )


async def operator_get(ctx: CaseContext, name: str) -> E.Emergency:
    return await expect_ok(
        operator(ctx).GetEmergency(E.GetEmergencyRequest(name=name)), "GetEmergency by an operator"
    )


async def wait_for(
    ctx: CaseContext, name: str, predicate: Callable[[E.Emergency], bool], what: str, within_s: float
) -> E.Emergency:
    """Poll GetEmergency (operator) until ``predicate`` holds; fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        emergency = await operator_get(ctx, name)
        if predicate(emergency):
            return emergency
        if time.monotonic() > deadline:
            fail(
                f"{what} did not happen within {within_s:.0f} s;"
                f" state {E.EmergencyState.Name(emergency.state)}"
            )
        await asyncio.sleep(0.25)


async def dispatches_of(ctx: CaseContext, emergency: str) -> list[D.Dispatch]:
    response = await expect_ok(
        dispatches(ctx, "CENTER_OPERATOR").ListDispatches(
            D.ListDispatchesRequest(parent=ctx.center(), emergency=emergency, page_size=100)
        ),
        "ListDispatches of the emergency (operator)",
    )
    return list(response.dispatches)


async def police_dispatch(ctx: CaseContext, emergency: str, within_s: float = 5.0) -> D.Dispatch:
    agency = police_agency(ctx)
    deadline = time.monotonic() + within_s
    while True:
        found = [d for d in await dispatches_of(ctx, emergency) if d.agency == agency]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            fail(f"no dispatch to {agency} within {within_s:.0f} s of raising {emergency}")
        await asyncio.sleep(0.25)


class Stream:
    """Reads a server stream in the background so a case can wait for messages with a timeout."""

    def __init__(self, ctx: CaseContext, call: Any) -> None:
        self.call = call
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.ended: grpc.aio.AioRpcError | bool | None = False
        self._exchange = ctx.log[-1] if ctx.log else None
        self._task = asyncio.ensure_future(self._pump())
        ctx.on_cleanup(self.close)

    async def _pump(self) -> None:
        try:
            async for message in self.call:
                if self._exchange is not None:
                    self._exchange.stream_responses.append(to_json(message))
                await self.queue.put(message)
            self.ended = None
        except grpc.aio.AioRpcError as error:
            self.ended = error
        except asyncio.CancelledError:
            self.ended = None
        await self.queue.put(None)

    async def next(self, within_s: float = 5.0, what: str = "the next stream event") -> Any:
        try:
            message = await asyncio.wait_for(self.queue.get(), within_s)
        except TimeoutError:
            fail(f"{what} did not arrive within {within_s:.0f} s")
        if message is None:
            await self.queue.put(None)
            fail(f"the stream ended before {what}: {self.ended!r}")
        return message

    async def poll(self, within_s: float) -> Any | None:
        """The next message, or None when none arrives within ``within_s`` or the stream ended."""
        try:
            message = await asyncio.wait_for(self.queue.get(), within_s)
        except TimeoutError:
            return None
        if message is None:
            await self.queue.put(None)
        return message

    async def until(
        self, predicate: Callable[[Any], bool], within_s: float, what: str
    ) -> tuple[Any, list[Any]]:
        """The first message matching ``predicate`` and every message before it."""
        seen: list[Any] = []
        deadline = time.monotonic() + within_s
        while True:
            message = await self.next(max(0.1, deadline - time.monotonic()), what)
            if predicate(message):
                return message, seen
            seen.append(message)

    async def end(self, within_s: float = 5.0) -> grpc.aio.AioRpcError | None:
        """Wait until the stream ends; None for status OK."""
        deadline = time.monotonic() + within_s
        while self.ended is False:
            if time.monotonic() > deadline:
                fail(f"the stream did not end within {within_s:.0f} s")
            await asyncio.sleep(0.05)
        return self.ended if isinstance(self.ended, grpc.aio.AioRpcError) else None

    async def close(self) -> None:
        self.call.cancel()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


async def locations(*requests: E.StreamLocationRequest) -> Any:
    for request in requests:
        yield request


async def stream_fixes(
    stub: emergency_pb2_grpc.EmergencyServiceAsyncStub, *requests: E.StreamLocationRequest
) -> list[E.LocationAck]:
    call = stub.StreamLocation(locations(*requests))
    return [ack async for ack in call]


def same_but_ids_and_times(a: E.Emergency, b: E.Emergency) -> list[str]:
    """Fields in which two emergencies differ, ignoring names, ids, times and locations."""
    ignored = {
        "name",
        "incident_id",
        "reporter",
        "create_time",
        "update_time",
        "countdown_end_time",
        "raise_time",
        "end_time",
        "last_location",
        "location_summary",
        "dispatched_agencies",
    }
    differences = []
    for descriptor in E.Emergency.DESCRIPTOR.fields:
        if descriptor.name in ignored:
            continue
        if getattr(a, descriptor.name) != getattr(b, descriptor.name):
            differences.append(descriptor.name)
    shape_a = [
        (d.agency, d.HasField("acknowledge_time"), d.HasField("end_time")) for d in a.dispatched_agencies
    ]
    shape_b = [
        (d.agency, d.HasField("acknowledge_time"), d.HasField("end_time")) for d in b.dispatched_agencies
    ]
    if shape_a != shape_b:
        differences.append("dispatched_agencies")
    return differences


# --- RaiseEmergency ------------------------------------------------------------------------------------


@case(
    "TC_EMG_001_SRV",
    title="RaiseEmergency without countdown creates a RAISED emergency with incident id, mode, reporter",
    requirements=["EMG-005", "EMG-009", "EMG-008"],
    profile=PROFILE,
    kind="positive",
)
async def raise_creates_raised(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_()
    check(
        emergency.name.startswith(f"{ctx.center()}/emergencies/"),
        f"name {emergency.name!r} is not under {ctx.center()}",
    )
    check(
        emergency.state == E.EMERGENCY_STATE_RAISED,
        f"state is {E.EmergencyState.Name(emergency.state)}, not RAISED [EMG-009]",
    )
    check(emergency.mode == ctx.mode, "the emergency does not carry the request's mode")
    check(emergency.kind == E.EMERGENCY_KIND_APP_SOS, "the emergency does not carry the request's kind")
    incident = emergency.incident_id
    check(
        10 <= len(incident) <= 32 and all(c.isalnum() or c == "-" for c in incident),
        f"incident_id {incident!r} [EMG-005]",
    )
    check(emergency.HasField("raise_time"), "a RAISED emergency has no raise_time [EMG-009]")
    again = await reporter.get(emergency.name)
    check(
        again.incident_id == incident,
        "the incident_id changed between RaiseEmergency and GetEmergency [EMG-005]",
    )
    other = await Reporter.new(ctx).raise_()
    check(other.incident_id != incident, "two emergencies got the same incident_id [EMG-005]")


@case(
    "TC_EMG_002_SRV",
    title="incident_id is a ULID (26 Crockford base32 characters)",
    requirements=["EMG-006"],
    profile=PROFILE,
    kind="positive",
)
async def incident_id_is_ulid(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    alphabet = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    check(
        len(emergency.incident_id) == 26 and set(emergency.incident_id.upper()) <= alphabet,
        f"incident_id {emergency.incident_id!r} is not a ULID",
    )


@case(
    "TC_EMG_003_SRV",
    title="A broken profile is INVALID_FIELD with a violation per field, and leaves no trace",
    requirements=["EMG-002", "ERR-003", "ERR-008"],
    profile=PROFILE,
    kind="negative",
)
async def broken_profile_rejected(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    profile = E.ConsentedProfile(birth_year=1850, guardians=[E.GuardianContact(display_name="엄마")])
    request = reporter.request(profile=profile)
    error = await expect_error(
        reporter.stub.RaiseEmergency(request), code=INVALID_ARGUMENT, reason="INVALID_FIELD"
    )
    named = {v.field for v in error.field_violations}
    for wanted in ("profile.guardians[0].phone", "profile.consent_time"):
        check(wanted in named, f"no field violation on {wanted}; violations name {sorted(named)} [EMG-002]")
    # birth_year 1850 breaks a message-level rule of ConsentedProfile: reported on the field or the profile
    check(
        bool(named & {"profile.birth_year", "profile"}),
        f"no field violation for birth_year 1850; violations name {sorted(named)} [EMG-002]",
    )
    # Nothing was stored: the same request_id with a valid payload is a first request [ERR-008].
    fixed = E.RaiseEmergencyRequest()
    fixed.CopyFrom(request)
    fixed.ClearField("profile")
    emergency = await reporter.raise_(fixed)
    check(emergency.state in ACTIVE, "the corrected request did not create an active emergency")


@case(
    "TC_EMG_004_SRV",
    title="RaiseEmergency of a center-raised kind is INVALID_FIELD on kind",
    requirements=["EMG-007"],
    profile=PROFILE,
    kind="negative",
)
async def center_kind_rejected(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    await expect_error(
        reporter.stub.RaiseEmergency(reporter.request(kind=E.EMERGENCY_KIND_TAG_BUTTON)),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="kind",
    )


@case(
    "TC_EMG_005_SRV",
    title="A retried RaiseEmergency returns the first emergency and creates no second dispatch",
    requirements=["EMG-003", "IDM-002", "DSP-002"],
    profile=PROFILE,
    kind="positive",
)
async def raise_retry_same(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    request = reporter.request()
    first = await reporter.raise_(request)
    await police_dispatch(ctx, first.name)
    second = await reporter.raise_(request)
    check(
        (second.name, second.incident_id) == (first.name, first.incident_id),
        "the retry returned another emergency",
    )
    await asyncio.sleep(0.5)
    found = await dispatches_of(ctx, first.name)
    agencies = [d.agency for d in found]
    check(len(agencies) == len(set(agencies)), f"the retry created a second dispatch: {agencies} [DSP-002]")


@case(
    "TC_IDM_001_SRV",
    title="RaiseEmergency reusing a request_id with another payload is ALREADY_EXISTS / REQUEST_ID_REUSED",
    requirements=["IDM-003"],
    profile=PROFILE,
    kind="negative",
)
async def request_id_reused(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    request = reporter.request()
    await reporter.raise_(request)
    changed = E.RaiseEmergencyRequest()
    changed.CopyFrom(request)
    changed.nature = E.EMERGENCY_NATURE_MEDICAL
    await expect_error(
        reporter.stub.RaiseEmergency(changed), code=grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED"
    )


@case(
    "TC_IDM_002_SRV",
    title="RaiseEmergency without or with a malformed request_id is INVALID_FIELD on request_id",
    requirements=["IDM-001"],
    profile=PROFILE,
    kind="negative",
)
async def request_id_required(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    for bad in ("", "not-a-uuid"):
        await expect_error(
            reporter.stub.RaiseEmergency(reporter.request(request_id=bad)),
            code=INVALID_ARGUMENT,
            reason="INVALID_FIELD",
            field="request_id",
            what=f"request_id {bad!r}",
        )


@case(
    "TC_EMG_006_SRV",
    title="A second press while active returns the same emergency and adds the fix",
    requirements=["EMG-004"],
    profile=PROFILE,
    kind="positive",
)
async def second_press_same(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    first = await reporter.raise_()
    second = await reporter.raise_(location=fix(ctx, now() + timedelta(seconds=1), north_m=30))
    check(second.name == first.name, f"a second press created {second.name} next to {first.name} [EMG-004]")
    check(second.state == first.state, "the second press changed the state")
    check(
        second.location_summary.fix_count >= first.location_summary.fix_count + 1,
        "the second press's location was not added to the fixes [EMG-004]",
    )


@case(
    "TC_GEN_008_SRV",
    title="RaiseEmergency with mode UNSPECIFIED or undefined is INVALID_FIELD on mode",
    requirements=["GEN-010"],
    profile=PROFILE,
    kind="negative",
)
async def mode_required(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    for mode in (0, 42):
        await expect_error(
            reporter.stub.RaiseEmergency(reporter.request(mode=mode)),
            code=INVALID_ARGUMENT,
            reason="INVALID_FIELD",
            field="mode",
            what=f"mode {mode}",
        )


@case(
    "TC_LOC_001_SRV",
    title="A location outside WGS84 ranges is INVALID_FIELD naming location.latitude / location.longitude",
    requirements=["LOC-001", "LOC-002"],
    profile=PROFILE,
    kind="negative",
)
async def location_ranges(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    for field_name, value in (("latitude", 90.5), ("longitude", -180.5)):
        location = fix(ctx)
        setattr(location, field_name, value)
        await expect_error(
            reporter.stub.RaiseEmergency(reporter.request(location=location)),
            code=INVALID_ARGUMENT,
            reason="INVALID_FIELD",
            field=f"location.{field_name}",
        )
    location = fix(ctx)
    location.heading_deg = 360.0
    await expect_error(
        reporter.stub.RaiseEmergency(reporter.request(location=location)),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="location.heading_deg",
    )


@case(
    "TC_LOC_002_SRV",
    title="radius_m above 100000 and confidence_percent above 99 are INVALID_FIELD",
    requirements=["LOC-003", "LOC-001"],
    profile=PROFILE,
    kind="negative",
)
async def location_uncertainty(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    for field_name, value in (("radius_m", 100_001.0), ("confidence_percent", 100)):
        location = fix(ctx)
        setattr(location, field_name, value)
        await expect_error(
            reporter.stub.RaiseEmergency(reporter.request(location=location)),
            code=INVALID_ARGUMENT,
            reason="INVALID_FIELD",
            field=f"location.{field_name}",
        )


@case(
    "TC_LOC_003_SRV",
    title="A location without fix_time is INVALID_FIELD on location.fix_time",
    requirements=["LOC-004", "LOC-001"],
    profile=PROFILE,
    kind="negative",
)
async def location_needs_fix_time(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    location = fix(ctx)
    location.ClearField("fix_time")
    await expect_error(
        reporter.stub.RaiseEmergency(reporter.request(location=location)),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="location.fix_time",
    )


@case(
    "TC_LOC_004_SRV",
    title="The fix with the latest fix_time is current whatever the arrival order",
    requirements=["LOC-004", "EMG-019", "EMG-020"],
    profile=PROFILE,
    kind="positive",
)
async def latest_fix_is_current(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    start = now() - timedelta(seconds=60)
    emergency = await reporter.raise_(location=fix(ctx, start))
    newer, older = fix(ctx, start + timedelta(seconds=40), 50), fix(ctx, start + timedelta(seconds=20), 20)
    acks = await stream_fixes(
        reporter.stub,
        E.StreamLocationRequest(name=emergency.name, sequence=1, location=newer),
        E.StreamLocationRequest(name=emergency.name, sequence=2, location=older),
    )
    statuses = [(a.sequence, a.status) for a in acks]
    check(
        statuses == [(1, E.LOCATION_ACK_STATUS_ACCEPTED), (2, E.LOCATION_ACK_STATUS_ACCEPTED_OLDER)],
        f"acks were {statuses}, expected 1 ACCEPTED then 2 ACCEPTED_OLDER [EMG-019, EMG-020]",
    )
    current = await operator_get(ctx, emergency.name)
    check(
        current.last_location.fix_time == newer.fix_time,
        "last_location is not the fix with the latest fix_time [LOC-004]",
    )


@case(
    "TC_EMG_007_SRV",
    title="StreamLocation: resends DUPLICATE, far-future and invalid fixes REJECTED, the stream stays open",
    requirements=["EMG-020", "EMG-021"],
    profile=PROFILE,
    kind="negative",
)
async def stream_location_rejections(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_()
    bad = fix(ctx)
    bad.latitude = 95.0
    acks = await stream_fixes(
        reporter.stub,
        E.StreamLocationRequest(name=emergency.name, sequence=1, location=fix(ctx)),
        E.StreamLocationRequest(name=emergency.name, sequence=1, location=fix(ctx)),
        E.StreamLocationRequest(
            name=emergency.name, sequence=2, location=fix(ctx, now() + timedelta(minutes=10))
        ),
        E.StreamLocationRequest(name=emergency.name, sequence=3, location=bad),
        E.StreamLocationRequest(name=emergency.name, sequence=4, location=fix(ctx)),
    )
    got = [(a.sequence, E.LocationAckStatus.Name(a.status)) for a in acks]
    wanted = [
        (1, "LOCATION_ACK_STATUS_ACCEPTED"),
        (1, "LOCATION_ACK_STATUS_DUPLICATE"),
        (2, "LOCATION_ACK_STATUS_REJECTED"),
        (3, "LOCATION_ACK_STATUS_REJECTED"),
        (4, "LOCATION_ACK_STATUS_ACCEPTED"),
    ]
    check(
        [g[0] for g in got] == [w[0] for w in wanted],
        f"acks {got}, expected one per request in order [EMG-020]",
    )
    check(got[1] == wanted[1], f"a resent sequence got {got[1]} [EMG-020]")
    check(got[2] == wanted[2] and got[3] == wanted[3], f"far-future / invalid fixes got {got[2:4]} [EMG-021]")
    check(
        got[4][1] in ("LOCATION_ACK_STATUS_ACCEPTED", "LOCATION_ACK_STATUS_ACCEPTED_OLDER"),
        "the stream did not stay open",
    )
    for ack in acks[2:4]:
        check(
            ack.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0],
            "a REJECTED ack's error is not INVALID_ARGUMENT",
        )


@case(
    "TC_EMG_008_SRV",
    title="StreamLocation switching to another emergency ends INVALID_FIELD on name after the earlier acks",
    requirements=["EMG-022"],
    profile=PROFILE,
    kind="negative",
)
async def stream_location_name_switch(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_()
    call = reporter.stub.StreamLocation(
        locations(
            E.StreamLocationRequest(name=emergency.name, sequence=1, location=fix(ctx)),
            E.StreamLocationRequest(
                name=f"{ctx.center()}/emergencies/{ctx.resource_id('e')}", sequence=2, location=fix(ctx)
            ),
        )
    )
    acks: list[E.LocationAck] = []

    async def read() -> None:
        async for ack in call:
            acks.append(ack)

    await expect_error(read(), code=INVALID_ARGUMENT, reason="INVALID_FIELD", field="name")
    check(
        [a.sequence for a in acks] == [1],
        f"expected the first request acknowledged before the error, got {len(acks)} acks",
    )


# --- countdown, cancel, duress ----------------------------------------------------------------------


@case(
    "TC_EMG_009_SRV",
    title="A countdown emergency is PENDING without dispatch or cameras, then RAISED at countdown_end_time",
    requirements=["EMG-009", "EMG-010"],
    profile=PROFILE,
    kind="positive",
    timeout=20.0,
)
async def countdown_then_raised(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_(countdown=duration_pb2.Duration(seconds=2))
    check(
        emergency.state == E.EMERGENCY_STATE_PENDING,
        f"state {E.EmergencyState.Name(emergency.state)}, not PENDING",
    )
    delta = to_dt(emergency.countdown_end_time) - to_dt(emergency.create_time)
    check(
        abs(delta - timedelta(seconds=2)) < timedelta(milliseconds=10),
        f"countdown_end_time is create_time + {delta}",
    )
    pending = await operator_get(ctx, emergency.name)
    check(not pending.selected_cameras, "cameras were selected during the countdown [EMG-010]")
    check(not await dispatches_of(ctx, emergency.name), "a dispatch was made during the countdown [EMG-010]")
    raised = await wait_for(
        ctx, emergency.name, lambda e: e.state != E.EMERGENCY_STATE_PENDING, "RAISED", 6.0
    )
    check(
        raised.state == E.EMERGENCY_STATE_RAISED,
        f"after the countdown the state is {E.EmergencyState.Name(raised.state)}",
    )
    late = to_dt(raised.raise_time) - to_dt(emergency.countdown_end_time)
    check(
        timedelta(0) <= late <= timedelta(seconds=1),
        f"raise_time is {late} after countdown_end_time [EMG-009]",
    )


@case(
    "TC_EMG_010_SRV",
    title="Cancel during the countdown: CANCELLED, never dispatched; then fixes EMERGENCY_NOT_ACTIVE",
    requirements=["EMG-011", "EMG-015", "EMG-016"],
    profile=PROFILE,
    kind="negative",
    timeout=20.0,
)
async def cancel_during_countdown(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_(countdown=duration_pb2.Duration(seconds=3))
    cancelled = await reporter.cancel(emergency.name, reason=E.EMERGENCY_CANCEL_REASON_ACCIDENTAL)
    check(
        cancelled.state == E.EMERGENCY_STATE_CANCELLED, "CancelEmergency did not return CANCELLED [EMG-011]"
    )
    check(
        cancelled.cancel_reason == E.EMERGENCY_CANCEL_REASON_ACCIDENTAL,
        "cancel_reason is not the request's [EMG-011]",
    )
    check(cancelled.HasField("end_time"), "end_time is not set [EMG-011]")
    await asyncio.sleep(3.5)
    seen = await operator_get(ctx, emergency.name)
    check(
        seen.state == E.EMERGENCY_STATE_CANCELLED,
        "the cancelled emergency was raised when its countdown ended",
    )
    check(not await dispatches_of(ctx, emergency.name), "a cancelled countdown emergency was dispatched")
    call = reporter.stub.StreamLocation(
        locations(E.StreamLocationRequest(name=emergency.name, sequence=1, location=fix(ctx)))
    )

    async def read() -> None:
        async for _ in call:
            pass

    await expect_error(
        read(), code=FAILED_PRECONDITION, reason="EMERGENCY_NOT_ACTIVE", what="StreamLocation after a cancel"
    )
    await expect_error(
        reporter.stub.CancelEmergency(
            E.CancelEmergencyRequest(
                name=emergency.name, request_id=ctx.request_id(), reason=E.EMERGENCY_CANCEL_REASON_OTHER
            )
        ),
        code=FAILED_PRECONDITION,
        reason="EMERGENCY_NOT_ACTIVE",
        what="a second CancelEmergency",
    )


@case(
    "TC_EMG_011_SRV",
    title="A duress cancel looks normal to the reporter while operators see it active with duress",
    requirements=["EMG-012", "EMG-013", "EMG-014", "EMG-027"],
    profile=PROFILE,
    kind="positive",
    timeout=20.0,
)
async def duress_cancel(ctx: CaseContext) -> None:
    normal_reporter, duress_reporter = Reporter.new(ctx), Reporter.new(ctx)
    check_verifier = verifier()
    normal = await normal_reporter.raise_(duress_verifier=check_verifier)
    forced = await duress_reporter.raise_(duress_verifier=check_verifier)
    await police_dispatch(ctx, normal.name)
    await police_dispatch(ctx, forced.name)
    normal_view = await normal_reporter.cancel(normal.name, code="000000")
    duress_view = await duress_reporter.cancel(forced.name, code=DURESS_CODE)
    differences = same_but_ids_and_times(normal_view, duress_view)
    check(
        not differences,
        f"the duress cancel's response differs from a normal cancel's in {differences} [EMG-012]",
    )
    check(
        duress_view.state == E.EMERGENCY_STATE_CANCELLED and not duress_view.duress,
        "the reporter sees duress [EMG-012]",
    )
    later_normal = await normal_reporter.get(normal.name)
    later_duress = await duress_reporter.get(forced.name)
    differences = same_but_ids_and_times(later_normal, later_duress)
    check(not differences, f"the reporters' GetEmergency differ in {differences} [EMG-012]")
    staff = await operator_get(ctx, forced.name)
    check(
        staff.state in ACTIVE,
        f"operators see the duress-cancelled emergency as {E.EmergencyState.Name(staff.state)} [EMG-012]",
    )
    check(
        staff.duress and staff.HasField("duress_time"),
        "operators do not see duress with duress_time [EMG-013]",
    )
    check(
        (await operator_get(ctx, normal.name)).state == E.EMERGENCY_STATE_CANCELLED,
        "a wrong code did not cancel normally",
    )
    police = await police_dispatch(ctx, forced.name)
    check(
        police.state not in (D.DISPATCH_STATE_CLOSED, D.DISPATCH_STATE_CLEARED),
        "the duress cancel closed the police dispatch",
    )
    await expect_error(
        duress_reporter.stub.CancelEmergency(
            E.CancelEmergencyRequest(
                name=forced.name, request_id=ctx.request_id(), reason=E.EMERGENCY_CANCEL_REASON_OTHER
            )
        ),
        code=FAILED_PRECONDITION,
        reason="EMERGENCY_NOT_ACTIVE",
        what="a second cancel after the duress cancel [EMG-012]",
    )


@case(
    "TC_EMG_012_SRV",
    title="A duress cancel in the countdown raises at once, dispatches the police, keeps accepting fixes",
    requirements=["EMG-012", "EMG-013", "EMG-015"],
    profile=PROFILE,
    kind="positive",
    timeout=20.0,
)
async def duress_during_countdown(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_(countdown=duration_pb2.Duration(seconds=30), duress_verifier=verifier())
    watch = Stream(ctx, operator(ctx).WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
    await watch.next(what="the operator's SNAPSHOT")
    await reporter.cancel(emergency.name, code=DURESS_CODE)
    staff = await operator_get(ctx, emergency.name)
    check(
        staff.state == E.EMERGENCY_STATE_RAISED,
        f"state {E.EmergencyState.Name(staff.state)}: not RAISED at once [EMG-012]",
    )
    await police_dispatch(ctx, emergency.name, within_s=5.0)
    await watch.until(
        lambda ev: ev.type == E.EMERGENCY_EVENT_TYPE_DURESS_SIGNALLED,
        5.0,
        "a DURESS_SIGNALLED event [EMG-013]",
    )
    acks = await stream_fixes(
        reporter.stub, E.StreamLocationRequest(name=emergency.name, sequence=1, location=fix(ctx))
    )
    check(
        len(acks) == 1
        and acks[0].status in (E.LOCATION_ACK_STATUS_ACCEPTED, E.LOCATION_ACK_STATUS_ACCEPTED_OLDER),
        f"a fix after the duress cancel was not accepted: {acks} [EMG-015]",
    )


# --- operator and officer state changes -------------------------------------------------------------


@case(
    "TC_EMG_013_SRV",
    title="UpdateEmergencyState follows the table: RAISED→ON_SCENE refused, RAISED→ACKNOWLEDGED done",
    requirements=["EMG-017"],
    profile=PROFILE,
    kind="negative",
)
async def state_transitions(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    ops = operator(ctx)

    def update(state: E.EmergencyState.ValueType, note: str = "") -> Any:
        return ops.UpdateEmergencyState(
            E.UpdateEmergencyStateRequest(
                name=emergency.name, request_id=ctx.request_id(), state=state, note=note
            )
        )

    await expect_error(
        update(E.EMERGENCY_STATE_ON_SCENE), code=FAILED_PRECONDITION, reason="INVALID_STATE_TRANSITION"
    )
    await expect_error(
        update(E.EMERGENCY_STATE_RESOLVED),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        what="RESOLVED without a note",
    )
    await expect_error(
        update(E.EMERGENCY_STATE_RAISED), code=INVALID_ARGUMENT, reason="INVALID_FIELD", field="state"
    )
    acked = await expect_ok(
        update(E.EMERGENCY_STATE_ACKNOWLEDGED, "확인"), "RAISED → ACKNOWLEDGED by an operator"
    )
    check(acked.state == E.EMERGENCY_STATE_ACKNOWLEDGED, "the emergency did not become ACKNOWLEDGED")
    check(acked.status_note == "확인", "status_note is not the request's note [EMG-017]")
    await expect_error(
        update(E.EMERGENCY_STATE_ACKNOWLEDGED), code=FAILED_PRECONDITION, reason="INVALID_STATE_TRANSITION"
    )
    cancelled = await expect_ok(
        update(E.EMERGENCY_STATE_CANCELLED, "오인 신고"), "ACKNOWLEDGED → CANCELLED (false alarm)"
    )
    check(
        cancelled.cancel_reason == E.EMERGENCY_CANCEL_REASON_FALSE_ALARM,
        "an operator's cancel is not FALSE_ALARM [EMG-017]",
    )
    await expect_error(
        update(E.EMERGENCY_STATE_RESOLVED, "끝"),
        code=FAILED_PRECONDITION,
        reason="EMERGENCY_NOT_ACTIVE",
        what="UpdateEmergencyState of a terminal emergency [EMG-016]",
    )


@case(
    "TC_EMG_014_SRV",
    title="Officers: NOT_OWNER before their dispatch is acknowledged, never ACKNOWLEDGED; ON_SCENE after",
    requirements=["EMG-017", "EMG-018", "EMG-026", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def officer_state_changes(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    dispatch = await police_dispatch(ctx, emergency.name)
    officer = officer_emergencies(ctx)

    def update(state: E.EmergencyState.ValueType, note: str = "") -> Any:
        return officer.UpdateEmergencyState(
            E.UpdateEmergencyStateRequest(
                name=emergency.name, request_id=ctx.request_id(), state=state, note=note
            )
        )

    await expect_error(
        update(E.EMERGENCY_STATE_ON_SCENE), code=PERMISSION_DENIED, reason="NOT_OWNER", what="before the ack"
    )
    await expect_error(
        update(E.EMERGENCY_STATE_ACKNOWLEDGED), code=PERMISSION_DENIED, reason="ROLE_NOT_PERMITTED"
    )
    await expect_ok(
        dispatches(ctx).AcknowledgeDispatch(
            D.AcknowledgeDispatchRequest(
                name=dispatch.name, request_id=ctx.request_id(), unit_id="conformance-unit"
            )
        ),
        "AcknowledgeDispatch by the police officer",
    )
    dispatched = await wait_for(
        ctx, emergency.name, lambda e: e.state == E.EMERGENCY_STATE_DISPATCHED, "DISPATCHED", 3.0
    )
    entry = [a for a in dispatched.dispatched_agencies if a.dispatch == dispatch.name]
    check(
        bool(entry) and entry[0].HasField("acknowledge_time"),
        "dispatched_agencies has no acknowledge_time [EMG-018]",
    )
    on_scene = await expect_ok(update(E.EMERGENCY_STATE_ON_SCENE), "DISPATCHED → ON_SCENE by the officer")
    check(on_scene.state == E.EMERGENCY_STATE_ON_SCENE, "the officer could not report ON_SCENE")
    resolved = await expect_ok(
        update(E.EMERGENCY_STATE_RESOLVED, "신병 확보"), "ON_SCENE → RESOLVED by the officer"
    )
    check(
        resolved.state == E.EMERGENCY_STATE_RESOLVED and resolved.status_note == "신병 확보",
        "not RESOLVED with the note",
    )


@case(
    "TC_EMG_015_SRV",
    title="A dispatch reporting ON_SCENE moves the DISPATCHED emergency to ON_SCENE",
    requirements=["EMG-026", "EMG-018", "DSP-010"],
    profile=PROFILE,
    kind="positive",
)
async def dispatch_on_scene(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    dispatch = await police_dispatch(ctx, emergency.name)
    police = dispatches(ctx)
    await expect_ok(
        police.AcknowledgeDispatch(
            D.AcknowledgeDispatchRequest(name=dispatch.name, request_id=ctx.request_id(), unit_id="u-1")
        ),
        "AcknowledgeDispatch",
    )
    await expect_ok(
        police.UpdateDispatchStatus(
            D.UpdateDispatchStatusRequest(
                name=dispatch.name, request_id=ctx.request_id(), state=D.DISPATCH_STATE_ON_SCENE
            )
        ),
        "UpdateDispatchStatus ON_SCENE",
    )
    seen = await wait_for(
        ctx, emergency.name, lambda e: e.state == E.EMERGENCY_STATE_ON_SCENE, "ON_SCENE", 3.0
    )
    entry = [a for a in seen.dispatched_agencies if a.dispatch == dispatch.name]
    check(
        bool(entry) and entry[0].HasField("on_scene_time"),
        "dispatched_agencies has no on_scene_time [EMG-018]",
    )


# --- authorization ----------------------------------------------------------------------------------


@case(
    "TC_EMG_016_SRV",
    title="Another user, an operator of another center and an officer without a dispatch get NOT_OWNER",
    requirements=["EMG-030", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def not_owner(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    stranger = Reporter.new(ctx)
    name = emergency.name
    await expect_error(
        stranger.stub.GetEmergency(E.GetEmergencyRequest(name=name)),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
    )
    await expect_error(
        stranger.stub.CancelEmergency(
            E.CancelEmergencyRequest(
                name=name, request_id=ctx.request_id(), reason=E.EMERGENCY_CANCEL_REASON_OTHER
            )
        ),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="CancelEmergency by another user",
    )
    call = stranger.stub.StreamLocation(
        locations(E.StreamLocationRequest(name=name, sequence=1, location=fix(ctx)))
    )

    async def read() -> None:
        async for _ in call:
            pass

    await expect_error(
        read(), code=PERMISSION_DENIED, reason="NOT_OWNER", what="StreamLocation by another user"
    )
    watch = stranger.stub.WatchEmergency(E.WatchEmergencyRequest(name=name))

    async def read_watch() -> None:
        async for _ in watch:
            pass

    await expect_error(
        read_watch(), code=PERMISSION_DENIED, reason="NOT_OWNER", what="WatchEmergency by another user"
    )
    foreign = ctx.tokens.mint("CENTER_OPERATOR", claims={"center": f"centers/{ctx.resource_id('c')}"})
    other_ops = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR", token=foreign)
    await expect_error(
        other_ops.GetEmergency(E.GetEmergencyRequest(name=name)),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="GetEmergency by an operator of another center",
    )
    fire_agency(ctx)
    await expect_error(
        officer_emergencies(ctx, "FIRE_OFFICER").GetEmergency(E.GetEmergencyRequest(name=name)),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="GetEmergency of a crime SOS by a fire officer",
    )


@case(
    "TC_EMG_017_SRV",
    title="Roles the authorization table denies get ROLE_NOT_PERMITTED",
    requirements=["SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def roles_denied(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    for role in ("CENTER_OPERATOR", "GUARDIAN", "POLICE_OFFICER", "AUDITOR"):
        stub = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, role)
        await expect_error(
            stub.RaiseEmergency(reporter.request()),
            code=PERMISSION_DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"RaiseEmergency by {role}",
        )
    await expect_error(
        reporter.stub.ListEmergencies(E.ListEmergenciesRequest(parent=ctx.center())),
        code=PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="ListEmergencies by an APP_USER",
    )
    name = f"{ctx.center()}/emergencies/{ctx.resource_id('e')}"
    await expect_error(
        reporter.stub.UpdateEmergencyState(
            E.UpdateEmergencyStateRequest(
                name=name, request_id=ctx.request_id(), state=E.EMERGENCY_STATE_ACKNOWLEDGED
            )
        ),
        code=PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="UpdateEmergencyState by an APP_USER",
    )
    await expect_error(
        operator(ctx).CancelEmergency(
            E.CancelEmergencyRequest(
                name=name, request_id=ctx.request_id(), reason=E.EMERGENCY_CANCEL_REASON_OTHER
            )
        ),
        code=PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="CancelEmergency by an operator",
    )


# --- views, watching, listing -----------------------------------------------------------------------


@case(
    "TC_EMG_018_SRV",
    title="The reporter's view hides cameras, recent fixes, dispatch names and staff-only events",
    requirements=["EMG-027", "EMG-033"],
    profile=PROFILE,
    kind="positive",
    timeout=20.0,
)
async def reporter_view(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_(civic_address=CIVIC)
    watch = Stream(ctx, reporter.stub.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
    await watch.next(what="the reporter's SNAPSHOT")
    staff = await wait_for(ctx, emergency.name, lambda e: len(e.dispatched_agencies) > 0, "a dispatch", 5.0)
    if ctx.fixtures.camera_location is not None:
        check(
            len(staff.selected_cameras) > 0,
            "no cameras were selected near the fixture camera location [EMG-033]",
        )
    await stream_fixes(
        reporter.stub, E.StreamLocationRequest(name=emergency.name, sequence=1, location=fix(ctx, north_m=40))
    )
    mine = await reporter.get(emergency.name)
    check(not mine.selected_cameras, "the reporter sees selected_cameras [EMG-027]")
    check(not mine.location_summary.recent_fixes, "the reporter sees recent_fixes [EMG-027]")
    check(all(not a.dispatch for a in mine.dispatched_agencies), "the reporter sees dispatch names [EMG-027]")
    check(not mine.duress and not mine.status_note, "the reporter sees duress or status_note [EMG-027]")
    await operator(ctx).UpdateEmergencyState(
        E.UpdateEmergencyStateRequest(
            name=emergency.name, request_id=ctx.request_id(), state=E.EMERGENCY_STATE_RESOLVED, note="종결"
        )
    )
    last, before = await watch.until(
        lambda ev: (
            ev.type == E.EMERGENCY_EVENT_TYPE_STATE_CHANGED
            and ev.state_change.state == E.EMERGENCY_STATE_RESOLVED
        ),
        5.0,
        "STATE_CHANGED → RESOLVED on the reporter's watch",
    )
    hidden = {
        E.EMERGENCY_EVENT_TYPE_CAMERAS_CHANGED,
        E.EMERGENCY_EVENT_TYPE_LOCATION_UPDATED,
        E.EMERGENCY_EVENT_TYPE_DURESS_SIGNALLED,
    }
    leaked = [E.EmergencyEventType.Name(ev.type) for ev in [*before, last] if ev.type in hidden]
    check(not leaked, f"the reporter got staff-only events {leaked} [EMG-027]")
    check(
        not last.state_change.HasField("actor") and not last.state_change.note,
        "the reporter sees actor or note [EMG-027]",
    )
    check(await watch.end() is None, "the reporter's watch did not end OK after RESOLVED [EMG-024]")


@case(
    "TC_EMG_019_SRV",
    title="WatchEmergency: SNAPSHOT, then changes with sequence +1; resumable; ends OK when terminal",
    requirements=["EMG-023", "EMG-024", "STM-001", "STM-002"],
    profile=PROFILE,
    kind="positive",
)
async def watch_and_resume(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    ops = operator(ctx)
    first = Stream(ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
    snapshot = await first.next(what="the SNAPSHOT")
    check(
        snapshot.type == E.EMERGENCY_EVENT_TYPE_SNAPSHOT and snapshot.replay,
        "the first event is not a SNAPSHOT with replay [EMG-023]",
    )
    check(bool(snapshot.cursor), "the SNAPSHOT has no cursor [STM-001]")
    await first.close()
    await expect_ok(
        ops.UpdateEmergencyState(
            E.UpdateEmergencyStateRequest(
                name=emergency.name, request_id=ctx.request_id(), state=E.EMERGENCY_STATE_ACKNOWLEDGED
            )
        ),
        "RAISED → ACKNOWLEDGED",
    )
    resumed = Stream(
        ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name, resume_cursor=snapshot.cursor))
    )
    changed, before = await resumed.until(
        lambda ev: ev.type == E.EMERGENCY_EVENT_TYPE_STATE_CHANGED,
        5.0,
        "the STATE_CHANGED missed while disconnected",
    )
    sequences = [ev.sequence for ev in [*before, changed]]
    check(
        sequences == list(range(snapshot.sequence + 1, snapshot.sequence + 1 + len(sequences))),
        f"sequences after the cursor {sequences} [STM-001, STM-002]",
    )
    check(all(not ev.replay for ev in [*before, changed]), "a change event has replay true [EMG-023]")
    check(
        changed.emergency.state == E.EMERGENCY_STATE_ACKNOWLEDGED,
        "the event does not carry the emergency after the change",
    )
    await ops.UpdateEmergencyState(
        E.UpdateEmergencyStateRequest(
            name=emergency.name, request_id=ctx.request_id(), state=E.EMERGENCY_STATE_RESOLVED, note="끝"
        )
    )
    await resumed.until(
        lambda ev: (
            ev.type == E.EMERGENCY_EVENT_TYPE_STATE_CHANGED
            and ev.emergency.state == E.EMERGENCY_STATE_RESOLVED
        ),
        5.0,
        "STATE_CHANGED → RESOLVED",
    )
    check(
        await resumed.end() is None,
        "the watch did not end with OK after the terminal STATE_CHANGED [EMG-024]",
    )
    again = Stream(ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
    final = await again.next(what="the SNAPSHOT of a terminal emergency")
    check(
        final.type == E.EMERGENCY_EVENT_TYPE_SNAPSHOT,
        "a watch of a terminal emergency did not start with a SNAPSHOT",
    )
    check(
        await again.end() is None,
        "a watch of a terminal emergency did not end OK after its SNAPSHOT [EMG-024]",
    )


@case(
    "TC_STM_001_SRV",
    title="WatchEmergency with a forged cursor or another emergency's cursor is CURSOR_INVALID",
    requirements=["STM-003"],
    profile=PROFILE,
    kind="negative",
)
async def watch_bad_cursor(ctx: CaseContext) -> None:
    one, two = await Reporter.new(ctx).raise_(), await Reporter.new(ctx).raise_()
    ops = operator(ctx)
    snapshots = []
    for emergency in (one, two):
        stream = Stream(ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
        snapshots.append((await stream.next(what="the SNAPSHOT"), emergency))
        await stream.close()
    # Resume the stream with MORE events from the other's cursor, so that its position lies inside
    # the target stream: only a check of the cursor's scope can then refuse it.
    (source, _), (_, target) = sorted(snapshots, key=lambda pair: pair[0].sequence)
    for name, cursor, what in (
        (target.name, source.cursor, "another emergency's cursor"),
        (one.name, "bm90LWEtY3Vyc29y", "a forged cursor"),
    ):
        call = ops.WatchEmergency(E.WatchEmergencyRequest(name=name, resume_cursor=cursor))

        async def read(call: Any = call, what: str = what) -> None:
            async def drain() -> None:
                async for _ in call:
                    pass

            try:
                await asyncio.wait_for(drain(), timeout=3.0)
            except TimeoutError:
                call.cancel()
                fail(f"WatchEmergency with {what} was accepted: the stream stayed open (STM-003)")

        await expect_error(
            read(), code=INVALID_ARGUMENT, reason="CURSOR_INVALID", what=f"WatchEmergency with {what}"
        )


@case(
    "TC_EMG_020_SRV",
    title="ListEmergencies filters by mode and incident_id, paginates, and refuses another center's operator",
    requirements=["EMG-028", "SEC-011"],
    profile=PROFILE,
    kind="negative",
)
async def list_emergencies(ctx: CaseContext) -> None:
    one = await Reporter.new(ctx).raise_()
    await Reporter.new(ctx).raise_()
    ops = operator(ctx)
    found = await expect_ok(
        ops.ListEmergencies(
            E.ListEmergenciesRequest(parent=ctx.center(), mode=ctx.mode, incident_id=one.incident_id)
        ),
        "ListEmergencies by incident_id",
    )
    check(
        [e.name for e in found.emergencies] == [one.name],
        f"filter by incident_id returned {[e.name for e in found.emergencies]}",
    )
    page = await expect_ok(
        ops.ListEmergencies(E.ListEmergenciesRequest(parent=ctx.center(), mode=ctx.mode, page_size=1)),
        "page 1",
    )
    check(
        len(page.emergencies) == 1 and bool(page.next_page_token),
        "page_size 1 did not return one item and a token",
    )
    following = await expect_ok(
        ops.ListEmergencies(
            E.ListEmergenciesRequest(
                parent=ctx.center(), mode=ctx.mode, page_size=1, page_token=page.next_page_token
            )
        ),
        "page 2",
    )
    check(len(following.emergencies) == 1, "the second page is empty")
    a, b = page.emergencies[0], following.emergencies[0]
    check(
        (to_dt(a.create_time), "") >= (to_dt(b.create_time), "") and a.name != b.name,
        "pages are not ordered by create_time newest first [EMG-028]",
    )
    check(all(e.mode == ctx.mode for e in [a, b]), "the mode filter returned another mode")
    foreign = ctx.tokens.mint("CENTER_OPERATOR", claims={"center": f"centers/{ctx.resource_id('c')}"})
    other_ops = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR", token=foreign)
    await expect_error(
        other_ops.ListEmergencies(E.ListEmergenciesRequest(parent=ctx.center())),
        code=PERMISSION_DENIED,
        reason="NOT_OWNER",
        what="ListEmergencies by an operator of another center",
    )
    await expect_error(
        ops.ListEmergencies(E.ListEmergenciesRequest(parent=ctx.center(), page_token="garbage")),
        code=INVALID_ARGUMENT,
        reason="PAGE_TOKEN_INVALID",
        what="a forged page_token",
    )


@case(
    "TC_EMG_021_SRV",
    title="Within 5 s of RAISED the police are dispatched and the cameras nearest the location selected",
    requirements=["EMG-033", "EMG-018", "DSP-001", "EMG-029"],
    profile=PROFILE,
    kind="positive",
)
async def raised_is_dispatched(ctx: CaseContext) -> None:
    emergency = await Reporter.new(ctx).raise_()
    staff = await wait_for(ctx, emergency.name, lambda e: len(e.dispatched_agencies) > 0, "a dispatch", 5.0)
    agency = police_agency(ctx)
    check(
        any(a.agency == agency for a in staff.dispatched_agencies),
        f"no dispatched_agencies entry for {agency}",
    )
    entry = next(a for a in staff.dispatched_agencies if a.agency == agency)
    check(
        entry.HasField("request_time") and bool(entry.dispatch),
        "the entry has no request_time or dispatch [EMG-018]",
    )
    dispatch = await police_dispatch(ctx, emergency.name)
    check(dispatch.mode == ctx.mode, "the dispatch does not carry the emergency's mode [EMG-029]")
    check(dispatch.state == D.DISPATCH_STATE_PENDING, "a new dispatch is not PENDING [DSP-001]")
    check(len(staff.selected_cameras) <= 16, "more than 16 cameras selected [EMG-033]")
    if ctx.fixtures.camera_location is not None:
        check(len(staff.selected_cameras) > 0, "no cameras selected at the fixture camera location [EMG-033]")


@case(
    "TC_EMG_022_SRV",
    title="Nature MEDICAL is dispatched to 119 only and FIRE to both 119 and 112",
    requirements=["EMG-031"],
    profile=PROFILE,
    kind="positive",
)
async def nature_decides_agencies(ctx: CaseContext) -> None:
    police, fire = police_agency(ctx), fire_agency(ctx)
    medical = await Reporter.new(ctx).raise_(nature=E.EMERGENCY_NATURE_MEDICAL)
    burning = await Reporter.new(ctx).raise_(nature=E.EMERGENCY_NATURE_FIRE)
    got_medical = await wait_for(
        ctx, medical.name, lambda e: len(e.dispatched_agencies) > 0, "a dispatch", 5.0
    )
    got_fire = await wait_for(
        ctx, burning.name, lambda e: len(e.dispatched_agencies) >= 2, "two dispatches", 5.0
    )
    check(
        {a.agency for a in got_medical.dispatched_agencies} == {fire},
        "a MEDICAL emergency was not dispatched to 119 only",
    )
    check(
        {a.agency for a in got_fire.dispatched_agencies} == {fire, police},
        "a FIRE emergency was not dispatched to 119 and 112",
    )


@case(
    "TC_LOC_005_SRV",
    title="A broken uncertainty ellipse or polygon is INVALID_FIELD naming the shape's field",
    requirements=["LOC-005", "LOC-006", "LOC-001"],
    profile=PROFILE,
    kind="negative",
)
async def location_shapes(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    ellipse = fix(ctx)
    ellipse.ellipse.CopyFrom(
        common_pb2.Location.Ellipse(semi_major_m=10, semi_minor_m=20, orientation_deg=180)
    )
    error = await expect_error(
        reporter.stub.RaiseEmergency(reporter.request(location=ellipse)),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="location.ellipse.orientation_deg",
    )
    named = {v.field for v in error.field_violations}
    check(
        bool(named & {"location.ellipse", "location.ellipse.semi_minor_m"}),
        f"semi_minor_m > semi_major_m is not reported; violations name {sorted(named)} [LOC-005]",
    )
    lat, lon = where(ctx)
    polygon = fix(ctx)
    polygon.polygon.vertices.extend([common_pb2.Point(latitude=lat, longitude=lon)] * 2)
    await expect_error(
        reporter.stub.RaiseEmergency(reporter.request(location=polygon)),
        code=INVALID_ARGUMENT,
        reason="INVALID_FIELD",
        field="location.polygon.vertices",
    )


def _fix_free(emergency: E.Emergency) -> bool:
    return not emergency.HasField("last_location") and not emergency.location_summary.recent_fixes


@case(
    "TC_PRV_002_SRV",
    title="The fixes of an ended TEST-mode emergency are purged after the declared TEST retention: "
    "GetEmergency, a new or resumed WatchEmergency and ListDispatches no longer return them",
    requirements=["PRV-011", "PRV-015", "PRV-010"],
    profile=PROFILE,
    kind="positive",
    timeout=90,
)
async def emergency_fixes_purged(ctx: CaseContext) -> None:
    retention = ctx.declaration.test_retention_seconds
    if retention is None or retention > 40:
        ctx.skip("test_retention_seconds is not declared or longer than 40 s")
        return
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_()
    ops = operator(ctx)
    watch = Stream(ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
    snapshot = await watch.next(what="the SNAPSHOT of the operator's watch")
    check(snapshot.emergency.HasField("last_location"), "before the purge operators see the location")
    await reporter.cancel(emergency.name)
    await watch.end(within_s=10)
    purged = await wait_for(
        ctx, emergency.name, _fix_free, "the purge of the emergency's fixes", retention + 30
    )
    check(purged.state == E.EMERGENCY_STATE_CANCELLED, "the purge removes the fixes, not the emergency")
    check(_fix_free(await reporter.get(emergency.name)), "the reporter's view still shows a purged fix")
    for d in await dispatches_of(ctx, emergency.name):
        check(
            not d.summary.HasField("location") and not d.HasField("origin"),
            f"ListDispatches still returns the purged location in {d.name}",
        )
    fresh = Stream(ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name)))
    first = await fresh.next(what="the SNAPSHOT of a watch after the purge")
    check(_fix_free(first.emergency), "a new watch's SNAPSHOT still shows a purged fix")
    resumed = Stream(
        ctx, ops.WatchEmergency(E.WatchEmergencyRequest(name=emergency.name, resume_cursor=snapshot.cursor))
    )
    ended = await resumed.end(within_s=10)
    while not resumed.queue.empty():
        event = resumed.queue.get_nowait()
        if event is not None:
            check(
                _fix_free(event.emergency) and not event.HasField("location"),
                "a watch resumed from before the purge replays a purged fix"
                f" ({E.EmergencyEventType.Name(event.type)})",
            )
    if ended is not None:
        check(
            ended.code() == grpc.StatusCode.OUT_OF_RANGE,
            f"a resume from before the purge ends with {ended.code().name}, not OUT_OF_RANGE/CURSOR_EXPIRED",
        )
