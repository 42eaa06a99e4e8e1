"""Federation cases (spec §17): the center under test as the *handling* center of forwards sent by
the suite, which plays the peer ``fixtures.peer_center`` (its PEER_CENTER client certificate must be
registered for that center in the target's trust registry).

Every forwarded emergency is in MODE_TEST, located at ``fixtures.service_area_location`` (else
``camera_location``) and carries an incident id with the run id; clean-up cancels it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc, federation_pb2, federation_pb2_grpc

from conformance import CaseContext, case, check, expect_error, expect_ok

PROFILE = "federation"
PEER = "PEER_CENTER"
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def _peer(ctx: CaseContext) -> str:
    if not ctx.fixtures.peer_center:
        ctx.skip("the declaration has no fixtures.peer_center (a registered peer identity)")
    assert ctx.fixtures.peer_center is not None
    return ctx.fixtures.peer_center


def cancel_on_cleanup(ctx: CaseContext, stub: Any, name: str, *, refusal_expected: bool = False) -> None:
    """Cancel a forwarded emergency the case created when it ends. A refused cancel is reported,
    unless ``refusal_expected`` (the emergency may have been handed off, so the center refuses)."""

    async def cancel() -> None:
        try:
            await stub.CancelForwardedEmergency(
                federation_pb2.CancelForwardedEmergencyRequest(
                    request_id=ctx.request_id(),
                    emergency=name,
                    mode=ctx.mode,
                    reason=federation_pb2.CANCEL_REASON_USER_CANCELLED,
                    user_cancel_reason=emergency_pb2.EMERGENCY_CANCEL_REASON_ACCIDENTAL,
                )
            )
        except grpc.aio.AioRpcError:
            if not refusal_expected:
                raise

    ctx.on_cleanup(cancel)


def _stub(ctx: CaseContext, role: str | None = PEER, token: str | None = None) -> Any:
    return ctx.stub(federation_pb2_grpc.FederationServiceStub, role, token=token)


def _where(ctx: CaseContext) -> tuple[float, float]:
    spot = ctx.fixtures.service_area_location or ctx.fixtures.camera_location
    if spot is None:
        ctx.skip("the declaration has no fixtures.service_area_location or camera_location")
    assert spot is not None
    return spot.latitude, spot.longitude


def _location(lat: float, lon: float, at: datetime | None = None) -> common_pb2.Location:
    location = common_pb2.Location(
        latitude=lat, longitude=lon, radius_m=15, method=common_pb2.POSITIONING_METHOD_GNSS
    )
    location.fix_time.FromDatetime(at or datetime.now(UTC))
    return location


def _emergency(ctx: CaseContext, home: str) -> federation_pb2.ForwardedEmergency:
    emergency = federation_pb2.ForwardedEmergency(
        incident_id=f"CT-{ctx.run.run_id}-{uuid.uuid4().hex[:10]}",
        home_emergency=f"{home}/emergencies/{ctx.resource_id('e')}",
        kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
        mode=ctx.mode,
        location=_location(*_where(ctx)),
    )
    emergency.raise_time.GetCurrentTime()
    return emergency


def _forward(
    ctx: CaseContext,
    emergency: federation_pb2.ForwardedEmergency,
    home: str,
    via: list[str] | None = None,
    reason: int = 1,
) -> federation_pb2.ForwardEmergencyRequest:
    return federation_pb2.ForwardEmergencyRequest(
        request_id=ctx.request_id(),
        emergency=emergency,
        home_center=home,
        via=via or [home],
        reason=reason,  # type: ignore[arg-type]
    )


async def _accepted(
    ctx: CaseContext,
) -> tuple[federation_pb2.ForwardedEmergency, federation_pb2.ForwardEmergencyResponse]:
    peer = _peer(ctx)
    emergency = _emergency(ctx, peer)
    stub = _stub(ctx)
    response = await expect_ok(
        stub.ForwardEmergency(_forward(ctx, emergency, peer)), "a forward into the area"
    )

    cancel_on_cleanup(ctx, stub, response.emergency)
    return emergency, response


@case(
    "TC_FED_001_SRV",
    title=(
        "A forward into the center's area is stored and answered with its emergency, the"
        " full via path and accept_time"
    ),
    requirements=["FED-007", "FED-008"],
    profile=PROFILE,
    kind="positive",
)
async def forward_accepted(ctx: CaseContext) -> None:
    _, response = await _accepted(ctx)
    center = ctx.center()
    check(
        response.emergency.startswith(center + "/emergencies/"), "the emergency belongs to the called center"
    )
    check(
        list(response.via) == [_peer(ctx), center], "via is the request's via followed by the called center"
    )
    check(response.HasField("accept_time") and not response.duplicate, "accept_time set, not a duplicate")


@case(
    "TC_FED_002_SRV",
    title=(
        "A second forward of the same incident (new request_id) returns the same"
        " emergency with duplicate = true"
    ),
    requirements=["FED-009"],
    profile=PROFILE,
    kind="positive",
)
async def forward_duplicate(ctx: CaseContext) -> None:
    emergency, first = await _accepted(ctx)
    peer = _peer(ctx)
    again = await expect_ok(
        _stub(ctx).ForwardEmergency(_forward(ctx, emergency, peer, reason=3)), "the repeat"
    )
    check(again.duplicate, "duplicate is true")
    check(again.emergency == first.emergency, "the same emergency is returned")


@case(
    "TC_FED_003_SRV",
    title="The same incident id from another home center is refused ALREADY_EXISTS",
    requirements=["FED-009"],
    profile=PROFILE,
    kind="negative",
)
async def forward_other_home(ctx: CaseContext) -> None:
    emergency, _ = await _accepted(ctx)
    other = f"centers/{ctx.resource_id('home')}"
    moved = federation_pb2.ForwardedEmergency()
    moved.CopyFrom(emergency)
    moved.home_emergency = f"{other}/emergencies/{ctx.resource_id('e')}"
    await expect_error(
        _stub(ctx).ForwardEmergency(_forward(ctx, moved, other, via=[other, _peer(ctx)])),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="ALREADY_EXISTS",
    )


@case(
    "TC_FED_004_SRV",
    title="A forward whose last via entry is not the caller is refused PEER_NOT_TRUSTED",
    requirements=["FED-004"],
    profile=PROFILE,
    kind="negative",
)
async def via_not_caller(ctx: CaseContext) -> None:
    _peer(ctx)
    other = f"centers/{ctx.resource_id('home')}"
    await expect_error(
        _stub(ctx).ForwardEmergency(_forward(ctx, _emergency(ctx, other), other)),
        code=DENIED,
        reason="PEER_NOT_TRUSTED",
    )


@case(
    "TC_FED_005_SRV",
    title="A forward whose via does not start with home_center is refused INVALID_FIELD",
    requirements=["FED-004"],
    profile=PROFILE,
    kind="negative",
)
async def via_not_home(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    other = f"centers/{ctx.resource_id('home')}"
    await expect_error(
        _stub(ctx).ForwardEmergency(_forward(ctx, _emergency(ctx, other), other, via=[peer])),
        code=INVALID,
        reason="INVALID_FIELD",
    )


@case(
    "TC_FED_006_SRV",
    title="A forward that has already passed the called center is refused FORWARDING_LOOP",
    requirements=["FED-006"],
    profile=PROFILE,
    kind="negative",
)
async def loop(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    center = ctx.center()
    await expect_error(
        _stub(ctx).ForwardEmergency(_forward(ctx, _emergency(ctx, center), center, via=[center, peer])),
        code=PRECONDITION,
        reason="FORWARDING_LOOP",
    )


@case(
    "TC_FED_007_SRV",
    title="A forward with reason UNSPECIFIED or HANDOFF is refused INVALID_FIELD",
    requirements=["FED-005"],
    profile=PROFILE,
    kind="negative",
)
async def bad_reason(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    for reason in (0, 2):
        await expect_error(
            _stub(ctx).ForwardEmergency(_forward(ctx, _emergency(ctx, peer), peer, reason=reason)),
            code=INVALID,
            reason="INVALID_FIELD",
            field="reason",
        )


@case(
    "TC_FED_008_SRV",
    title="A caller whose client certificate is registered for no center is refused PEER_NOT_TRUSTED",
    requirements=["FED-001", "SEC-002"],
    profile=PROFILE,
    kind="negative",
)
async def unregistered_certificate(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    if not ctx.declaration.tls.client_certs.get("POLICE_OFFICER"):
        ctx.skip("needs a second client certificate (POLICE_OFFICER's) that no center entry lists")
    stub = _stub(ctx, "POLICE_OFFICER", token=ctx.tokens.token(PEER))
    await expect_error(
        stub.ForwardEmergency(_forward(ctx, _emergency(ctx, peer), peer)),
        code=DENIED,
        reason="PEER_NOT_TRUSTED",
    )


@case(
    "TC_FED_009_SRV",
    title=(
        "A token whose center claim names another center than the certificate's is refused PEER_NOT_TRUSTED"
    ),
    requirements=["FED-001"],
    profile=PROFILE,
    kind="negative",
)
async def token_other_center(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    if not ctx.tokens.can_mint:
        ctx.skip("needs a test issuer to mint a token naming another center")
    other = f"centers/{ctx.resource_id('x')}"
    token = ctx.tokens.mint(PEER, claims={"center": other, "sub": other})
    await expect_error(
        _stub(ctx, PEER, token=token).ForwardEmergency(_forward(ctx, _emergency(ctx, peer), peer)),
        code=DENIED,
        reason="PEER_NOT_TRUSTED",
    )


@case(
    "TC_FED_010_SRV",
    title="Relayed fixes: the latest fix_time stays current; another mode is refused MODE_MISMATCH",
    requirements=["FED-010", "FED-016", "LOC-004"],
    profile=PROFILE,
    kind="negative",
)
async def relay_and_mode(ctx: CaseContext) -> None:
    emergency, response = await _accepted(ctx)
    lat, lon = _where(ctx)
    stub = _stub(ctx)
    later = datetime.now(UTC) + timedelta(seconds=5)
    newer = await expect_ok(
        stub.UpdateForwardedLocation(
            federation_pb2.UpdateForwardedLocationRequest(
                request_id=ctx.request_id(),
                emergency=response.emergency,
                mode=ctx.mode,
                locations=[_location(lat, lon, later)],
            )
        )
    )
    check(
        newer.current_fix_time.ToDatetime(tzinfo=UTC) == later.replace(microsecond=later.microsecond),
        "the newer fix is current",
    )
    older = await expect_ok(
        stub.UpdateForwardedLocation(
            federation_pb2.UpdateForwardedLocationRequest(
                request_id=ctx.request_id(),
                emergency=response.emergency,
                mode=ctx.mode,
                locations=[_location(lat, lon, later - timedelta(seconds=30))],
            )
        )
    )
    check(
        older.current_fix_time == newer.current_fix_time,
        "an older relayed fix does not replace the current one",
    )
    other_mode = common_pb2.MODE_EXERCISE if ctx.mode != common_pb2.MODE_EXERCISE else common_pb2.MODE_TEST
    await expect_error(
        stub.UpdateForwardedLocation(
            federation_pb2.UpdateForwardedLocationRequest(
                request_id=ctx.request_id(),
                emergency=response.emergency,
                mode=other_mode,
                locations=[_location(lat, lon)],
            )
        ),
        code=PRECONDITION,
        reason="MODE_MISMATCH",
    )
    _ = emergency


@case(
    "TC_FED_011_SRV",
    title=(
        "A user cancel ends the emergency CANCELLED; later relays fail"
        " EMERGENCY_NOT_ACTIVE; a repeat answers the final state"
    ),
    requirements=["FED-017", "FED-018"],
    profile=PROFILE,
    kind="negative",
)
async def cancel_then_relay(ctx: CaseContext) -> None:
    _, response = await _accepted(ctx)
    stub = _stub(ctx)

    def cancel() -> federation_pb2.CancelForwardedEmergencyRequest:
        return federation_pb2.CancelForwardedEmergencyRequest(
            request_id=ctx.request_id(),
            emergency=response.emergency,
            mode=ctx.mode,
            reason=federation_pb2.CANCEL_REASON_USER_CANCELLED,
            user_cancel_reason=emergency_pb2.EMERGENCY_CANCEL_REASON_SAFE_NOW,
        )

    ended = await expect_ok(stub.CancelForwardedEmergency(cancel()))
    check(ended.state == emergency_pb2.EMERGENCY_STATE_CANCELLED, "the emergency ends CANCELLED")
    await expect_error(
        stub.UpdateForwardedLocation(
            federation_pb2.UpdateForwardedLocationRequest(
                request_id=ctx.request_id(),
                emergency=response.emergency,
                mode=ctx.mode,
                locations=[_location(*_where(ctx))],
            )
        ),
        code=PRECONDITION,
        reason="EMERGENCY_NOT_ACTIVE",
    )
    again = await expect_ok(stub.CancelForwardedEmergency(cancel()))
    check(again.state == emergency_pb2.EMERGENCY_STATE_CANCELLED, "a repeated cancel answers the final state")


@case(
    "TC_FED_012_SRV",
    title="A duress cancel keeps the forwarded emergency active",
    requirements=["FED-018"],
    profile=PROFILE,
    kind="positive",
)
async def duress_keeps_active(ctx: CaseContext) -> None:
    _, response = await _accepted(ctx)
    reply = await expect_ok(
        _stub(ctx).CancelForwardedEmergency(
            federation_pb2.CancelForwardedEmergencyRequest(
                request_id=ctx.request_id(),
                emergency=response.emergency,
                mode=ctx.mode,
                reason=federation_pb2.CANCEL_REASON_DURESS,
            )
        )
    )
    check(
        reply.state not in (emergency_pb2.EMERGENCY_STATE_CANCELLED, emergency_pb2.EMERGENCY_STATE_RESOLVED),
        "the emergency stays active after a duress cancel",
    )


@case(
    "TC_FED_013_SRV",
    title="MirrorStatus for a home emergency never forwarded to the caller is refused NOT_OWNER",
    requirements=["FED-025"],
    profile=PROFILE,
    kind="negative",
)
async def mirror_not_owner(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    event = federation_pb2.MirrorEvent(
        sequence=1, started=federation_pb2.HandlingStarted(reason=federation_pb2.FORWARD_REASON_ROUTED)
    )
    event.event_time.GetCurrentTime()
    await expect_error(
        _stub(ctx).MirrorStatus(
            federation_pb2.MirrorStatusRequest(
                request_id=ctx.request_id(),
                home_emergency=f"{ctx.center()}/emergencies/{ctx.resource_id('e')}",
                handling_emergency=f"{peer}/emergencies/{ctx.resource_id('e')}",
                mode=ctx.mode,
                events=[event],
            )
        ),
        code=DENIED,
        reason="NOT_OWNER",
    )


@case(
    "TC_FED_014_SRV",
    title="FederationService refuses a CENTER_OPERATOR and an APP_USER with ROLE_NOT_PERMITTED",
    requirements=["FED-001", "SEC-005"],
    profile=PROFILE,
    kind="negative",
)
async def role_denied(ctx: CaseContext) -> None:
    peer = _peer(ctx)
    for role in ("CENTER_OPERATOR", "APP_USER"):
        await expect_error(
            _stub(ctx, role).ForwardEmergency(_forward(ctx, _emergency(ctx, peer), peer)),
            code=DENIED,
            reason="ROLE_NOT_PERMITTED",
        )


@case(
    "TC_FED_023_SRV",
    title=(
        "A user cancel's user_cancel_reason reaches the handling center's emergency, which ends"
        " CANCELLED with that reason"
    ),
    requirements=["FED-018"],
    profile=PROFILE,
    kind="positive",
)
async def cancel_keeps_user_reason(ctx: CaseContext) -> None:
    _, response = await _accepted(ctx)
    reason = emergency_pb2.EMERGENCY_CANCEL_REASON_ACCIDENTAL
    await expect_ok(
        _stub(ctx).CancelForwardedEmergency(
            federation_pb2.CancelForwardedEmergencyRequest(
                request_id=ctx.request_id(),
                emergency=response.emergency,
                mode=ctx.mode,
                reason=federation_pb2.CANCEL_REASON_USER_CANCELLED,
                user_cancel_reason=reason,
            )
        ),
        "the cancel",
    )
    ended = await expect_ok(
        ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR").GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=response.emergency)
        ),
        "the operator reads the handling emergency",
    )
    check(ended.state == emergency_pb2.EMERGENCY_STATE_CANCELLED, "the emergency ended CANCELLED")
    check(
        ended.cancel_reason == reason,
        f"cancel_reason is the user's ({emergency_pb2.EmergencyCancelReason.Name(ended.cancel_reason)})",
    )


@case(
    "TC_FED_024_SRV",
    title=(
        "A handoff back to a center that handled the incident before (A → B → A) is a new takeover,"
        " not a refusal or a duplicate"
    ),
    requirements=["FED-009", "FED-022"],
    profile=PROFILE,
    kind="positive",
)
async def handoff_back(ctx: CaseContext) -> None:
    emergency, first = await _accepted(ctx)
    peer = _peer(ctx)
    stub = _stub(ctx)
    elsewhere = f"centers/{ctx.resource_id('b')}/emergencies/{ctx.resource_id('e')}"
    moved = await expect_ok(
        stub.CancelForwardedEmergency(
            federation_pb2.CancelForwardedEmergencyRequest(
                request_id=ctx.request_id(),
                emergency=first.emergency,
                mode=ctx.mode,
                reason=federation_pb2.CANCEL_REASON_HANDLED_ELSEWHERE,
                handled_by=elsewhere,
            )
        ),
        "the home center hands it elsewhere (FED-020)",
    )
    check(moved.state == emergency_pb2.EMERGENCY_STATE_TRANSFERRED, "the first emergency is TRANSFERRED")
    back = federation_pb2.ForwardedEmergency()
    back.CopyFrom(emergency)
    back.location.fix_time.GetCurrentTime()
    again = await expect_ok(
        stub.HandoffEmergency(
            federation_pb2.HandoffEmergencyRequest(
                request_id=ctx.request_id(),
                emergency=back,
                home_center=peer,
                previous_emergency=elsewhere,
                via=[peer],
            )
        ),
        "the handoff back",
    )

    cancel_on_cleanup(ctx, stub, again.emergency)
    check(not again.duplicate, "the handoff back is not a duplicate of the transferred emergency")
    check(again.emergency != first.emergency, "a new emergency takes the incident over")
    check(list(again.via) == [peer, ctx.center()], "via is the request's via followed by the center")
    taken = await expect_ok(
        ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR").GetEmergency(
            emergency_pb2.GetEmergencyRequest(name=again.emergency)
        ),
        "the operator reads the new emergency",
    )
    check(taken.incident_id == emergency.incident_id, "it keeps the incident id (EMG-005)")
    check(taken.state == emergency_pb2.EMERGENCY_STATE_RAISED, "it is active again, RAISED")
