"""Cross-cutting cases: rules of spec §1–§4 that no single service section owns.

Every rpc answered (GEN-001), administrative codes (GEN-012), the insecure development mode
(GEN-013), output-only and identity fields on input (GEN-022, SEC-006), nested validation (GEN-030),
officer tokens without an agency (SEC-008), deny by default (SEC-012), the consented profile
(PRV-002), access records outliving the data they describe (PRV-012), the fields and chain of every
access record (AUD-002), the JSON form of responses (JSON-001) and the dataset conversions of the
declared CCTV rows (CAM-005, CAM-007).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import grpc.aio
import protovalidate
from ansim.v1 import (
    camera_pb2,
    camera_pb2_grpc,
    child_safety_pb2,
    child_safety_pb2_grpc,
    common_pb2,
    directory_pb2,
    directory_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    emergency_pb2,
    emergency_pb2_grpc,
    guardian_pb2,
    guardian_pb2_grpc,
    statistics_pb2_grpc,
)
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from ansim_sdk.jsonvalidation import validate_json
from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.emergency import Reporter, now, ts
from conformance.cases.video import canonical_hash
from conformance.cases.video_setup import cancel, grant_request, incident, near_cameras
from conformance.expect import fail
from conformance.preflight import health_status
from conformance.profiles import known_services
from conformance.standard import method_path, standard_services
from conformance.wire import ParsedError, parse_error

CORE = "center-core"
SERVERS = ("center-core", "directory")
ALL_SERVERS = ("center-core", "child-safety", "safe-trip", "directory", "federation", "statistics")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED
E = emergency_pb2
C = camera_pb2
HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: How long an rpc called with an empty request may take to answer (a stream that stays open past it
#: was accepted, so it is implemented).
ANSWER_WAIT_S = 3.0

#: Roles that the Authorization table of a service's section denies for every rpc of the service
#: (GetVideoGatewayKeys, public, aside): spec §10.8, §11, §12.5, §13, §14 (two tables), §15, §16, §17,
#: §18. The full rows, not the summary of §3.3.
DENIED_EVERYWHERE: dict[str, tuple[str, ...]] = {
    "ansim.v1.EmergencyService": ("GUARDIAN", "READER_GATEWAY", "AUDITOR", "PEER_CENTER", "DIRECTORY_ADMIN"),
    "ansim.v1.SafeTripService": (
        "READER_GATEWAY", "POLICE_OFFICER", "FIRE_OFFICER", "AUDITOR", "PEER_CENTER", "DIRECTORY_ADMIN",
    ),
    "ansim.v1.CameraService": ("APP_USER", "GUARDIAN", "READER_GATEWAY", "PEER_CENTER", "DIRECTORY_ADMIN"),
    "ansim.v1.DispatchService": (
        "APP_USER", "GUARDIAN", "READER_GATEWAY", "AUDITOR", "PEER_CENTER", "DIRECTORY_ADMIN",
    ),
    "ansim.v1.ChildSafetyService": (
        "APP_USER", "POLICE_OFFICER", "FIRE_OFFICER", "AUDITOR", "PEER_CENTER", "DIRECTORY_ADMIN",
    ),
    "ansim.v1.TagEventService": (
        "APP_USER", "GUARDIAN", "CENTER_OPERATOR", "POLICE_OFFICER", "FIRE_OFFICER", "AUDITOR",
        "PEER_CENTER", "DIRECTORY_ADMIN",
    ),
    "ansim.v1.GuardianService": (
        "APP_USER", "READER_GATEWAY", "POLICE_OFFICER", "FIRE_OFFICER", "AUDITOR", "PEER_CENTER",
        "DIRECTORY_ADMIN",
    ),
    "ansim.v1.DirectoryService": ("GUARDIAN", "READER_GATEWAY"),
    "ansim.v1.FederationService": (
        "APP_USER", "GUARDIAN", "READER_GATEWAY", "CENTER_OPERATOR", "POLICE_OFFICER", "FIRE_OFFICER",
        "AUDITOR", "DIRECTORY_ADMIN",
    ),
    "ansim.v1.StatisticsService": (
        "APP_USER", "GUARDIAN", "READER_GATEWAY", "PEER_CENTER", "DIRECTORY_ADMIN",
    ),
}  # fmt: skip
#: Public rpcs: no token needed, so no role is ever denied them (SEC-013).
PUBLIC = {"/ansim.v1.CameraService/GetVideoGatewayKeys"}


def _declared_services(ctx: CaseContext) -> list[str]:
    seen: list[str] = []
    for profile in ctx.declaration.profiles:
        seen += [s for s in known_services(profile) if s not in seen]
    return seen


# --- any rpc, called with raw bytes whatever its streaming kind ---------------------------------------


async def _drain(call: AsyncIterator[Any]) -> None:
    async for _ in call:
        return  # one message: the rpc is implemented and accepted the request


async def answer(
    ctx: CaseContext,
    method: MethodDescriptor,
    payload: bytes = b"",
    role: str | None = "CENTER_OPERATOR",
    *,
    token: str | None = None,
) -> tuple[grpc.StatusCode, ParsedError | None]:
    """Call ``method`` with ``payload`` as its (first) request message; the status it ends with (OK
    when it answers or a stream delivers a message, DEADLINE_EXCEEDED when a stream stays open)."""
    path = method_path(method.containing_service.full_name, method.name)
    channel: Any = ctx.channel(role, token=token)
    call: Any
    # One request then half-close, so every rpc is called with a unary request on the wire (the
    # server cannot tell). A request *stream* would race a server that refuses on the headers alone
    # (a denied role, a missing token): the write fails after its status came in, and grpc.aio then
    # reports INTERNAL "Internal error from Core" instead of the server's status (grpc/grpc#36066).
    try:
        if method.server_streaming:
            call = channel.unary_stream(path)(payload, timeout=ANSWER_WAIT_S)
            await _drain(call)
        else:
            await channel.unary_unary(path)(payload, timeout=ANSWER_WAIT_S)
    except grpc.aio.AioRpcError as error:
        return error.code(), parse_error(error)
    else:
        if method.server_streaming:
            call.cancel()
    return grpc.StatusCode.OK, None


async def first_message(call: Any) -> Any:
    """The first message of a server stream (for expect_ok / expect_error); the stream is cancelled."""
    try:
        async for message in call:
            return message
    finally:
        call.cancel()
    return None


# --- GEN-001 -----------------------------------------------------------------------------------------


@case(
    "TC_GEN_009_SRV",
    title="Every rpc of every declared service answers (anything but UNIMPLEMENTED) an empty request",
    requirements=["GEN-001"],
    profile=SERVERS,
    kind="positive",
    timeout=60.0,
)
async def every_rpc_implemented(ctx: CaseContext) -> None:
    services = standard_services()
    missing: list[str] = []
    for name in _declared_services(ctx):
        for method in services[name].methods:
            code, _ = await answer(ctx, method)
            if code == UNIMPLEMENTED:
                missing.append(f"{name}/{method.name}")
    check(not missing, f"UNIMPLEMENTED for rpcs of declared services: {', '.join(missing)} [GEN-001]")


@case(
    "TC_GEN_010_SRV",
    title="An rpc of a service the server does not run is answered UNIMPLEMENTED",
    requirements=["GEN-001"],
    profile=SERVERS,
    kind="negative",
    timeout=60.0,
)
async def undeclared_service_unimplemented(ctx: CaseContext) -> None:
    declared = set(_declared_services(ctx))
    services = standard_services()
    health = ctx.channel(role=None)
    tried: list[str] = []
    for name, service in services.items():
        if name in declared:
            continue
        status = await health_status(health, name)
        if status == "SERVING" or status == "NOT_SERVING":
            ctx.note(f"{name} is not declared but health knows it ({status}); its rpcs are not checked")
            continue
        tried.append(name)
        for method in service.methods:
            code, _ = await answer(ctx, method)
            check(
                code == UNIMPLEMENTED,
                f"{name}/{method.name} (a service the target does not run: health says {status}) "
                f"answered {code.name}, not UNIMPLEMENTED [GEN-001]",
            )
    # A service no version of the standard defines is certainly not run.
    fake = f"/ansim.v1.ConformanceNoSuchService{ctx.run.run_id}/Get"
    try:
        await ctx.raw(fake, b"", timeout=ANSWER_WAIT_S)
    except grpc.aio.AioRpcError as error:
        check(
            error.code() == UNIMPLEMENTED, f"{fake} answered {error.code().name}, not UNIMPLEMENTED [GEN-001]"
        )
    else:
        fail(f"{fake} (a service that does not exist) answered OK [GEN-001]")
    ctx.note(f"services not run and checked: {', '.join(tried) or 'none'}")


# --- GEN-012 -----------------------------------------------------------------------------------------

#: Values that break the 7-digit agency_code pattern: too short, too long, a letter.
BAD_AGENCY_CODES = ("300000", "30000000", "30000A0")


@case(
    "TC_GEN_011_SRV",
    title="Administrative codes of the wrong length or with letters are rejected INVALID_FIELD on "
    "their field",
    requirements=["GEN-012", "ERR-003"],
    profile=SERVERS,
    kind="negative",
)
async def admin_codes_rejected(ctx: CaseContext) -> None:
    if ctx.has_profile(CORE):
        cameras = ctx.stub(camera_pb2_grpc.CameraServiceStub, "CENTER_OPERATOR")
        for bad in BAD_AGENCY_CODES:
            await expect_error(
                cameras.ListCameras(C.ListCamerasRequest(parent=ctx.center(), agency_code=bad)),
                code=INVALID, reason="INVALID_FIELD", field="agency_code",
                what=f"ListCameras with agency_code {bad!r} (개방자치단체코드 is 7 digits)",
            )  # fmt: skip
        police = ctx.fixtures.agencies.get("POLICE_112")
        if police:
            dispatches = ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, "POLICE_OFFICER")
            for bad in ("1111", "111100", "1111A"):
                error = await expect_error(
                    first_message(
                        dispatches.SubscribeDispatches(
                            dispatch_pb2.SubscribeDispatchesRequest(
                                parent=ctx.center(), agency=police, mode=ctx.mode, sigungu_codes=[bad]
                            )
                        )
                    ),
                    code=INVALID, reason="INVALID_FIELD",
                    what=f"SubscribeDispatches with sigungu code {bad!r} (법정동 시군구 is 5 digits)",
                )  # fmt: skip
                violations = [v.field for v in error.field_violations]
                check(
                    any(f.startswith("sigungu_codes") for f in violations),
                    f"the violation for sigungu code {bad!r} names {violations}, not sigungu_codes [ERR-003]",
                )
    if ctx.has_profile("directory"):
        from conformance.cases.directory import _entry

        admin = ctx.stub(directory_pb2_grpc.DirectoryServiceStub, "DIRECTORY_ADMIN")
        entry = _entry(ctx, 34.8, 124.4)
        del entry.municipalities[:]
        entry.municipalities.append(
            common_pb2.AdministrativeCodes(
                legal_dong_sigungu_code="1111", agency_code="300000A", statistics_code="110100"
            )
        )
        error = await expect_error(
            admin.CreateCenter(directory_pb2.CreateCenterRequest(center=entry, request_id=ctx.request_id())),
            code=INVALID, reason="INVALID_FIELD",
            what="CreateCenter with a municipality whose three codes break their patterns",
        )  # fmt: skip
        named_fields = {v.field for v in error.field_violations}
        wanted = {
            f"center.municipalities[0].{f}"
            for f in ("legal_dong_sigungu_code", "agency_code", "statistics_code")
        }
        check(
            wanted <= named_fields,
            f"violations name {sorted(named_fields)}, not each of {sorted(wanted)} [GEN-012]",
        )


# --- GEN-013 -----------------------------------------------------------------------------------------


@case(
    "TC_GEN_012_SRV",
    title="A server in insecure development mode refuses LIVE requests with LIVE_MODE_REFUSED",
    requirements=["GEN-013"],
    profile=CORE,
    kind="negative",
)
async def insecure_refuses_live(ctx: CaseContext) -> None:
    if not ctx.declaration.tls.insecure:
        ctx.not_applicable(
            "the declaration is not insecure: GEN-013 binds the insecure development mode only"
        )
    reporter = Reporter.new(ctx)
    request = reporter.request(mode=common_pb2.MODE_LIVE)
    try:
        await expect_error(
            reporter.stub.RaiseEmergency(request),
            code=DENIED, reason="LIVE_MODE_REFUSED", what="a LIVE RaiseEmergency to an insecure server",
        )  # fmt: skip
    except Exception:
        # it was accepted: end the LIVE emergency at once (clean-up of Reporter only knows TEST ones)
        with contextlib.suppress(grpc.aio.AioRpcError):
            raised = await reporter.stub.RaiseEmergency(request)
            reporter.raised.append(raised.name)
        raise
    police = ctx.fixtures.agencies.get("POLICE_112")
    if police:
        dispatches = ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, "POLICE_OFFICER")
        await expect_error(
            first_message(
                dispatches.SubscribeDispatches(
                    dispatch_pb2.SubscribeDispatchesRequest(
                        parent=ctx.center(), agency=police, mode=common_pb2.MODE_LIVE
                    )
                )
            ),
            code=DENIED, reason="LIVE_MODE_REFUSED", what="a LIVE SubscribeDispatches to an insecure server",
        )  # fmt: skip
    # TEST traffic is still served
    await reporter.raise_()


# --- GEN-022, SEC-006 ---------------------------------------------------------------------------------


def _stamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@case(
    "TC_GEN_013_SRV",
    title="Output-only fields set on CreateVideoGrant (name, state, times, streams, revocation) are ignored",
    requirements=["GEN-022"],
    profile=CORE,
    kind="positive",
    timeout=30.0,
)
async def output_only_ignored(ctx: CaseContext) -> None:
    found = await incident(ctx)
    camera = (await near_cameras(ctx, found.emergency, 1))[0]
    request = grant_request(ctx, found.emergency, [camera.name], seconds=300)
    grant = request.video_grant
    chosen = f"{ctx.center()}/videoGrants/{ctx.resource_id('vg')}"
    grant.name = chosen
    grant.state = C.VIDEO_GRANT_STATE_REVOKED
    grant.not_after.CopyFrom(_stamp(4_102_444_800))  # 2100-01-01
    grant.create_time.CopyFrom(_stamp(946_684_800))  # 2000-01-01
    grant.update_time.CopyFrom(_stamp(946_684_800))
    grant.end_time.CopyFrom(_stamp(946_684_800))
    grant.revocation_reason = C.VIDEO_GRANT_REVOCATION_REASON_OPERATOR
    grant.revocation_note = "set by the client"
    grant.streams.append(
        C.VideoStream(camera=camera.name, channel=1, uri="rtsps://attacker.invalid/x", token="x")
    )
    police = ctx.stub(camera_pb2_grpc.CameraServiceStub, "POLICE_OFFICER")
    made = await expect_ok(police.CreateVideoGrant(request), "CreateVideoGrant with output-only fields set")
    check(made.name != chosen, "the grant took the name the client set in the output-only `name` [GEN-022]")
    check(
        made.state == C.VIDEO_GRANT_STATE_ACTIVE,
        "the grant is not ACTIVE: the client's state was used [GEN-022]",
    )
    check(
        made.revocation_reason == C.VIDEO_GRANT_REVOCATION_REASON_UNSPECIFIED and not made.revocation_note,
        "the ACTIVE grant carries the client's revocation reason or note [GEN-022]",
    )
    check(not made.HasField("end_time"), "the ACTIVE grant carries the client's end_time [GEN-022]")
    created = made.create_time.ToSeconds()
    check(created > 946_684_800 + 86_400, "create_time is the client's (2000-01-01) [GEN-022]")
    check(
        made.not_after.ToSeconds() - created <= 300 + 1,
        "not_after is not create_time + requested_duration: the client's not_after was used [GEN-022]",
    )
    uris = [s.uri for s in made.streams]
    check("rtsps://attacker.invalid/x" not in uris, "the client's stream URI was kept [GEN-022]")
    check(
        all(s.camera == camera.name for s in made.streams)
        and len(made.streams) == max(1, camera.camera_count),
        f"the streams are not one per channel of {camera.name}: the client's streams were kept [GEN-022]",
    )


@case(
    "TC_SEC_010_SRV",
    title="An officer Subject naming someone else in CreateVideoGrant is ignored: the grant and its "
    "access record name the token's subject",
    requirements=["SEC-006", "GEN-022"],
    profile=CORE,
    kind="negative",
    timeout=30.0,
)
async def identity_from_token(ctx: CaseContext) -> None:
    found = await incident(ctx)
    camera = (await near_cameras(ctx, found.emergency, 1))[0]
    request = grant_request(ctx, found.emergency, [camera.name], seconds=300)
    impostor = common_pb2.Subject(
        id="officers/someone-else/k-0000",
        role=common_pb2.ROLE_CENTER_OPERATOR,
        agency="agencies/someone-else",
        center=ctx.center(),
    )
    request.video_grant.officer.CopyFrom(impostor)
    police = ctx.stub(camera_pb2_grpc.CameraServiceStub, "POLICE_OFFICER")
    own = ctx.tokens.subject_claims("POLICE_OFFICER")
    try:
        made = await police.CreateVideoGrant(request)
    except grpc.aio.AioRpcError as raised:
        error = parse_error(raised)
        check(
            error.code in (INVALID, DENIED),
            f"a grant request naming another officer failed with {error.code.name}, neither a rejection "
            "(INVALID_ARGUMENT / PERMISSION_DENIED) nor success with the officer ignored [SEC-006]",
        )
        return
    check(
        made.officer.id == own["sub"],
        f"the grant's officer is {made.officer.id!r}, not the token's subject {own['sub']!r} [SEC-006]",
    )
    check(
        made.officer.role == common_pb2.ROLE_POLICE_OFFICER,
        "the grant's officer role is not the token's [SEC-006]",
    )
    check(made.officer.agency == own["agency"], "the grant's officer agency is not the token's [SEC-006]")
    listed = await expect_ok(
        ctx.stub(camera_pb2_grpc.CameraServiceStub, "AUDITOR").ListAccessRecords(
            C.ListAccessRecordsRequest(parent=ctx.center(), emergency=found.emergency)
        ),
        "ListAccessRecords of the emergency",
    )
    granted = [r for r in listed.access_records if r.video_grant == made.name]
    check(bool(granted), f"no access record names {made.name} [VID-001]")
    for record in granted:
        check(
            record.subject.id == own["sub"],
            f"{record.name} records {record.subject.id!r} as the recipient, not the token's subject "
            "[SEC-006]",
        )


# --- GEN-030 -----------------------------------------------------------------------------------------


async def _reporters_emergencies(ctx: CaseContext, subject: str) -> list[str]:
    ops = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
    names: list[str] = []
    token = ""
    for _ in range(200):
        page = await expect_ok(
            ops.ListEmergencies(
                E.ListEmergenciesRequest(parent=ctx.center(), page_size=1000, page_token=token, mode=ctx.mode)
            ),
            "ListEmergencies (TEST) by an operator",
        )
        names += [e.name for e in page.emergencies if e.reporter.id == subject]
        token = page.next_page_token
        if not token:
            break
    return names


@case(
    "TC_GEN_014_SRV",
    title="Broken constraints deep inside a request give one field violation each and write nothing",
    requirements=["GEN-030", "ERR-003", "ERR-008"],
    profile=CORE,
    kind="negative",
    timeout=30.0,
)
async def nested_violations(ctx: CaseContext) -> None:
    reporter = Reporter.new(ctx)
    request = reporter.request(
        profile=E.ConsentedProfile(
            display_name="시험",
            consent_time=ts(now()),
            guardians=[E.GuardianContact(display_name="어머니", phone="not-a-phone")],
        )
    )
    request.location.latitude = 123.0  # breaks lte 90 (LOC-002)
    error = await expect_error(
        reporter.stub.RaiseEmergency(request),
        code=INVALID, reason="INVALID_FIELD",
        what="RaiseEmergency with location.latitude 123 and a guardian phone that is no number",
    )  # fmt: skip
    named = [v.field for v in error.field_violations]
    wanted = {"location.latitude", "profile.guardians[0].phone"}
    check(
        sorted(named) == sorted(wanted),
        f"the violations name {named}; one each for {sorted(wanted)} was due (two broken constraints, "
        "two violations) [GEN-030]",
    )
    sub = _subject_of(reporter.token)
    written = await _reporters_emergencies(ctx, sub)
    check(not written, f"the rejected raise wrote emergencies {written} [GEN-030] [ERR-008]")


def _subject_of(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


# --- SEC-008 -----------------------------------------------------------------------------------------


@case(
    "TC_SEC_011_SRV",
    title="A police or fire officer token without an agency claim fails UNAUTHENTICATED / TOKEN_INVALID",
    requirements=["SEC-008"],
    profile=CORE,
    kind="negative",
)
async def officer_without_agency(ctx: CaseContext) -> None:
    for role in ("POLICE_OFFICER", "FIRE_OFFICER"):
        token = ctx.tokens.mint(role, omit=("agency",))
        cameras = ctx.stub(camera_pb2_grpc.CameraServiceStub, role, token=token)
        await expect_error(
            cameras.ListCameras(C.ListCamerasRequest(parent=ctx.center(), page_size=1)),
            code=grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID",
            what=f"ListCameras with a {role} token that has no agency claim",
        )  # fmt: skip
        empty = ctx.tokens.mint(role, claims={"agency": ""})
        cameras = ctx.stub(camera_pb2_grpc.CameraServiceStub, role, token=empty)
        await expect_error(
            cameras.ListCameras(C.ListCamerasRequest(parent=ctx.center(), page_size=1)),
            code=grpc.StatusCode.UNAUTHENTICATED, reason="TOKEN_INVALID",
            what=f"ListCameras with a {role} token whose agency claim is empty",
        )  # fmt: skip


# --- SEC-012 -----------------------------------------------------------------------------------------


@case(
    "TC_SEC_012_SRV",
    title="Deny by default: every rpc of a service refuses, before validation, each role its table "
    "denies throughout, and an rpc in no table is never served",
    requirements=["SEC-012", "SEC-010"],
    profile=ALL_SERVERS,
    kind="negative",
    timeout=90.0,
)
async def deny_by_default(ctx: CaseContext) -> None:
    services = standard_services()
    wrong: list[str] = []
    calls = 0
    for name in _declared_services(ctx):
        for role in DENIED_EVERYWHERE.get(name, ()):
            for method in services[name].methods:
                if method_path(name, method.name) in PUBLIC:
                    continue
                code, error = await answer(ctx, method, b"", role)
                calls += 1
                reasons = {"ROLE_NOT_PERMITTED"}
                if name == "ansim.v1.FederationService":
                    reasons.add("PEER_NOT_TRUSTED")  # SEC-002: the certificate check may come first
                if code != DENIED or error is None or error.reason not in reasons:
                    got = f"{code.name}/{error.reason if error else ''}"
                    wrong.append(f"{role} → {name}/{method.name}: {got}")
    for line in wrong[20:]:
        ctx.note(line)
    check(
        not wrong,
        f"{len(wrong)} of {calls} calls by roles the tables deny were not refused PERMISSION_DENIED / "
        f"ROLE_NOT_PERMITTED: " + "; ".join(wrong[:20]) + " [SEC-012]",
    )
    # An rpc that no table lists (and no proto defines) on a service the target runs.
    declared = _declared_services(ctx)
    if declared:
        path = f"/{declared[0]}/ConformanceUnlisted{ctx.run.run_id}"
        try:
            await ctx.raw(path, b"", timeout=ANSWER_WAIT_S)
        except grpc.aio.AioRpcError as raised:
            error = parse_error(raised)
            check(
                error.code == UNIMPLEMENTED
                or (error.code == DENIED and error.reason == "ROLE_NOT_PERMITTED"),
                f"{path} (in no authorization table) answered {error.code.name}/{error.reason}, neither "
                "UNIMPLEMENTED nor PERMISSION_DENIED / ROLE_NOT_PERMITTED [SEC-012]",
            )
        else:
            fail(f"{path} (in no authorization table) was served [SEC-012]")


# --- PRV-002 -----------------------------------------------------------------------------------------


def _text_of(value: Any) -> str:
    if isinstance(value, Message):
        return json_format.MessageToJson(value, ensure_ascii=False)
    return str(value)


async def _seen_by(what: str, call: Awaitable[Any]) -> tuple[str, str]:
    """What a party received: the response as JSON, or the error's message and details."""
    try:
        return what, _text_of(await call)
    except grpc.aio.AioRpcError as error:
        details = [str(error.details() or "")]
        trailing: Any = error.trailing_metadata() or ()
        for _, value in trailing:
            details.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
        return what, " ".join(details)


@case(
    "TC_PRV_003_SRV",
    title="The reporter's consented profile reaches no other app user, guardian, auditor or "
    "undispatched agency",
    requirements=["PRV-002", "SEC-011"],
    profile=CORE,
    kind="negative",
    timeout=40.0,
)
async def profile_not_disclosed(ctx: CaseContext) -> None:
    marker = uuid.uuid4().hex[:10]
    name = f"적합성{marker}"
    phone = f"010-{int(marker[:8], 16) % 10_000:04d}-{int(marker[2:], 16) % 10_000:04d}"
    guardian_phone = f"010-{int(marker[1:9], 16) % 10_000:04d}-{int(marker[3:], 16) % 10_000:04d}"
    profile = E.ConsentedProfile(
        display_name=name,
        phone=phone,
        consent_time=ts(now()),
        guardians=[
            E.GuardianContact(display_name=f"보호자{marker}", phone=guardian_phone, relation="어머니")
        ],
    )
    reporter = Reporter.new(ctx)
    emergency = await reporter.raise_(profile=profile, nature=E.EMERGENCY_NATURE_CRIME)
    secrets = (name, phone, guardian_phone, f"보호자{marker}")
    own = await reporter.get(emergency.name)
    check(own.profile.display_name == name, "the reporter does not see her own consented profile [PRV-002]")

    other_app = ctx.tokens.mint("APP_USER", claims={"sub": f"users/{ctx.resource_id('other')}"})
    views: list[tuple[str, str]] = []
    get = E.GetEmergencyRequest(name=emergency.name)
    for role, token in (("APP_USER", other_app), ("GUARDIAN", None), ("AUDITOR", None)):
        stub = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, role, token=token)
        views.append(
            await _seen_by(f"GetEmergency by {'another APP_USER' if token else role}", stub.GetEmergency(get))
        )
    fire = ctx.fixtures.agencies.get("FIRE_119")
    if fire:
        # a CRIME emergency is dispatched to 112 only (spec §10.6): the 119 room has no dispatch for it
        firefighter = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "FIRE_OFFICER")
        views.append(await _seen_by("GetEmergency by a FIRE_OFFICER", firefighter.GetEmergency(get)))
        fire_dispatch = ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, "FIRE_OFFICER")
        views.append(
            await _seen_by(
                "ListDispatches of the emergency by the 119 room",
                fire_dispatch.ListDispatches(
                    dispatch_pb2.ListDispatchesRequest(
                        parent=ctx.center(), agency=fire, emergency=emergency.name
                    )
                ),
            )
        )
        stream: Any = fire_dispatch.SubscribeDispatches(
            dispatch_pb2.SubscribeDispatchesRequest(parent=ctx.center(), agency=fire, mode=ctx.mode)
        )
        events: list[Any] = await ctx.read_stream(stream, 200, wait_s=2.0)
        stream.cancel()
        views += [("a 119 SubscribeDispatches event", _text_of(e)) for e in events]
    police = ctx.fixtures.agencies.get("POLICE_112")
    if police:
        # even the dispatched 112 room's dispatch carries an EmergencySummary without the profile
        police_dispatch = ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, "POLICE_OFFICER")
        for _ in range(25):
            what, seen = await _seen_by(
                "ListDispatches of the emergency by the 112 room",
                police_dispatch.ListDispatches(
                    dispatch_pb2.ListDispatchesRequest(
                        parent=ctx.center(), agency=police, emergency=emergency.name
                    )
                ),
            )
            if "dispatches" in seen:
                break
            await asyncio.sleep(0.2)
        views.append((what, seen))
    auditor = ctx.stub(camera_pb2_grpc.CameraServiceStub, "AUDITOR")
    views.append(
        await _seen_by(
            "ListAccessRecords of the emergency by an AUDITOR",
            auditor.ListAccessRecords(
                C.ListAccessRecordsRequest(parent=ctx.center(), emergency=emergency.name)
            ),
        )
    )
    leaks = [f"{what} shows {s!r}" for what, seen in views for s in secrets if s in seen]
    check(not leaks, "the consented profile leaked: " + "; ".join(leaks) + " [PRV-002]")


# --- PRV-012, AUD-002 ---------------------------------------------------------------------------------


def _record_problems(record: C.AccessRecord) -> list[str]:
    """The AUD-002 fields an access record lacks, and whether its own hash recomputes (§12.7)."""
    problems = []
    if record.sequence <= 0:
        problems.append("no sequence")
    if not record.HasField("record_time"):
        problems.append("no record_time")
    if not record.subject.id or record.subject.role == common_pb2.ROLE_UNSPECIFIED:
        problems.append("no acting subject with its role")
    if record.outcome == C.ACCESS_OUTCOME_UNSPECIFIED:
        problems.append("no outcome (action)")
    if not record.emergency or not (record.cameras or record.video_grant or record.denial_reason):
        problems.append("no resource (emergency and grant or cameras)")
    if not record.purpose:
        problems.append("no purpose")
    if not HEX64.match(record.previous_hash):
        problems.append("previous_hash is not 64 lowercase hex digits")
    if not HEX64.match(record.record_hash):
        problems.append("record_hash is not 64 lowercase hex digits")
    elif canonical_hash(record) != record.record_hash:
        problems.append("record_hash is not the SHA-256 of its canonical form")
    return problems


async def _grant_and_end(ctx: CaseContext) -> tuple[str, str]:
    """A TEST incident with one grant; the emergency is then cancelled (the grant revoked)."""
    found = await incident(ctx)
    camera = (await near_cameras(ctx, found.emergency, 1))[0]
    police = ctx.stub(camera_pb2_grpc.CameraServiceStub, "POLICE_OFFICER")
    made = await expect_ok(
        police.CreateVideoGrant(grant_request(ctx, found.emergency, [camera.name], seconds=300)),
        "CreateVideoGrant",
    )
    await cancel(ctx, found)
    return found.emergency, made.name


@case(
    "TC_AUD_001_SRV",
    title="Every access record carries sequence, time, subject and role, outcome, resource, purpose "
    "and both hashes, and the chain recomputes",
    requirements=["AUD-002"],
    profile=CORE,
    kind="positive",
    timeout=60.0,
)
async def access_record_fields(ctx: CaseContext) -> None:
    await _grant_and_end(ctx)  # at least a GRANTED and a REVOKED record exist
    auditor = ctx.stub(camera_pb2_grpc.CameraServiceStub, "AUDITOR")
    token, previous, count = "", "", 0
    broken: list[str] = []
    for _ in range(1000):
        page = await expect_ok(
            auditor.ListAccessRecords(
                C.ListAccessRecordsRequest(parent=ctx.center(), page_size=1000, page_token=token)
            ),
            "ListAccessRecords without filters as AUDITOR",
        )
        for record in page.access_records:
            count += 1
            problems = _record_problems(record)
            if previous and record.previous_hash != previous:
                problems.append("previous_hash is not the preceding record's record_hash")
            if record.sequence == 1 and record.previous_hash != "0" * 64:
                problems.append("record 1's previous_hash is not 64 zeros")
            broken += [f"{record.name}: {p}" for p in problems]
            previous = record.record_hash
        token = page.next_page_token
        if not token:
            break
    check(count >= 2, f"only {count} access record(s) listed after a grant and its revocation [VID-001]")
    for line in broken[20:]:
        ctx.note(line)
    check(not broken, f"{len(broken)} problem(s): " + "; ".join(broken[:20]) + " [AUD-002]")


@case(
    "TC_PRV_004_SRV",
    title="Access records stay listable after the location data of their emergency is purged",
    requirements=["PRV-012", "AUD-002"],
    profile=CORE,
    kind="positive",
    timeout=90.0,
)
async def records_outlive_purge(ctx: CaseContext) -> None:
    retention = ctx.declaration.test_retention_seconds
    if retention is None or retention > 40:
        ctx.skip("test_retention_seconds is not declared or longer than 40 s")
        return
    emergency, grant = await _grant_and_end(ctx)
    # Wait out the TEST retention of the emergency's location fixes; their purge is PRV-010/PRV-015's
    # business (other cases), so an unobserved purge is only noted: the records must outlive it anyway.
    operator = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retention + 20.0
    purged = False
    while not purged and loop.time() < deadline:
        await asyncio.sleep(1.0)
        seen = await expect_ok(operator.GetEmergency(E.GetEmergencyRequest(name=emergency)), "GetEmergency")
        purged = not seen.HasField("last_location") and not seen.location_summary.recent_fixes
    ctx.note(
        "the emergency's fixes were purged"
        if purged
        else f"the emergency's fixes were still returned {retention} s + 20 s after it ended"
    )
    listed = await expect_ok(
        ctx.stub(camera_pb2_grpc.CameraServiceStub, "AUDITOR").ListAccessRecords(
            C.ListAccessRecordsRequest(parent=ctx.center(), emergency=emergency)
        ),
        "ListAccessRecords of the purged emergency",
    )
    outcomes = [C.AccessOutcome.Name(r.outcome) for r in listed.access_records if r.video_grant == grant]
    check(
        "ACCESS_OUTCOME_GRANTED" in outcomes and "ACCESS_OUTCOME_REVOKED" in outcomes,
        f"after the purge the grant's records are {outcomes}, not GRANTED and REVOKED [PRV-012]",
    )
    for record in listed.access_records:
        problems = _record_problems(record)
        check(not problems, f"{record.name} after the purge: {'; '.join(problems)} [AUD-002]")


# --- JSON-001 ----------------------------------------------------------------------------------------


def _json_problems(message: Message) -> list[str]:
    full_name = message.DESCRIPTOR.full_name
    text = json_format.MessageToJson(message)
    return [
        f"{full_name} {p.path}: {p.rule} ({p.requirement}) {p.message}"
        for p in validate_json(full_name, text)
    ]


@case(
    "TC_JSON_001_SRV",
    title="A representative response of every declared service validates, in its JSON form, against "
    "its message's JSON Schema",
    requirements=["JSON-001"],
    profile=ALL_SERVERS,
    kind="positive",
    timeout=60.0,
)
async def responses_match_schemas(ctx: CaseContext) -> None:
    samples: list[Message] = []
    checked: list[str] = []

    async def take(service: str, what: str, call: Awaitable[Any]) -> None:
        samples.append(await expect_ok(call, what))
        checked.append(service)

    declared = set(_declared_services(ctx))
    if "ansim.v1.CameraService" in declared:
        cameras = ctx.stub(camera_pb2_grpc.CameraServiceStub, "CENTER_OPERATOR")
        await take(
            "CameraService",
            "ListCameras",
            cameras.ListCameras(C.ListCamerasRequest(parent=ctx.center(), page_size=100)),
        )
        await take(
            "CameraService", "GetVideoGatewayKeys",
            cameras.GetVideoGatewayKeys(C.GetVideoGatewayKeysRequest(parent=ctx.center())),
        )  # fmt: skip
    if "ansim.v1.EmergencyService" in declared:
        found = await incident(ctx)
        operator = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "CENTER_OPERATOR")
        await take(
            "EmergencyService",
            "GetEmergency",
            operator.GetEmergency(E.GetEmergencyRequest(name=found.emergency)),
        )
        if "ansim.v1.DispatchService" in declared:
            police = ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, "POLICE_OFFICER")
            await take(
                "DispatchService",
                "GetDispatch",
                police.GetDispatch(dispatch_pb2.GetDispatchRequest(name=found.dispatch)),
            )
        if "ansim.v1.CameraService" in declared:
            camera = (await near_cameras(ctx, found.emergency, 1))[0]
            grants = ctx.stub(camera_pb2_grpc.CameraServiceStub, "POLICE_OFFICER")
            await take(
                "CameraService", "CreateVideoGrant",
                grants.CreateVideoGrant(grant_request(ctx, found.emergency, [camera.name], seconds=300)),
            )  # fmt: skip
            auditor = ctx.stub(camera_pb2_grpc.CameraServiceStub, "AUDITOR")
            await take(
                "CameraService", "ListAccessRecords",
                auditor.ListAccessRecords(
                    C.ListAccessRecordsRequest(parent=ctx.center(), emergency=found.emergency)
                ),
            )  # fmt: skip
    if "ansim.v1.ChildSafetyService" in declared:
        children = ctx.stub(child_safety_pb2_grpc.ChildSafetyServiceStub, "CENTER_OPERATOR")
        await take(
            "ChildSafetyService", "ListZones",
            children.ListZones(child_safety_pb2.ListZonesRequest(parent=ctx.center(), page_size=50)),
        )  # fmt: skip
    if "ansim.v1.GuardianService" in declared:
        guardian = ctx.stub(guardian_pb2_grpc.GuardianServiceStub, "CENTER_OPERATOR")
        await take(
            "GuardianService", "ListNotifications",
            guardian.ListNotifications(
                guardian_pb2.ListNotificationsRequest(
                    parent=f"{ctx.center()}/guardians/operators", page_size=50
                )
            ),
        )  # fmt: skip
    if "ansim.v1.SafeTripService" in declared:
        from conformance.cases.safe_trip import start_trip

        trip = await start_trip(ctx)
        samples.append(trip.trip)
        samples.append(await trip.get())
        checked.append("SafeTripService")
    if "ansim.v1.StatisticsService" in declared:
        from conformance.cases.statistics import request as statistics_request

        stats = ctx.stub(statistics_pb2_grpc.StatisticsServiceStub, "CENTER_OPERATOR")
        await take(
            "StatisticsService", "GetIncidentStatistics", stats.GetIncidentStatistics(statistics_request(ctx))
        )
    if "ansim.v1.DirectoryService" in declared:
        directory = ctx.stub(directory_pb2_grpc.DirectoryServiceStub, "DIRECTORY_ADMIN")
        await take(
            "DirectoryService",
            "ListCenters",
            directory.ListCenters(directory_pb2.ListCentersRequest(page_size=50)),
        )
        await take(
            "DirectoryService",
            "GetDirectoryKeys",
            directory.GetDirectoryKeys(directory_pb2.GetDirectoryKeysRequest()),
        )
    problems = [p for message in samples for p in _json_problems(message)]
    ctx.note(f"checked responses of: {', '.join(sorted(set(checked)))}")
    unchecked = sorted(s.removeprefix("ansim.v1.") for s in declared - {f"ansim.v1.{c}" for c in checked})
    if unchecked:
        ctx.note(f"no representative response taken of: {', '.join(unchecked)}")
    for line in problems[20:]:
        ctx.note(line)
    check(not problems, f"{len(problems)} schema problem(s): " + "; ".join(problems[:20]) + " [JSON-001]")


# --- CAM-005, CAM-007 ---------------------------------------------------------------------------------


def camera_id(management_number: str) -> str:
    """CAM-001: lowercased, every character outside [a-z0-9-] replaced by '-'."""
    return re.sub(r"[^a-z0-9-]", "-", management_number.lower())


def _at(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


#: Camera fields of CAM-005 whose value must match their pattern, or be empty.
CAM_005_FIELDS = ("install_year_month", "data_reference_date", "managing_agency_phone")


@case(
    "TC_CAM_012_SRV",
    title="The declared CCTV dataset rows are published with 설치연월, 데이터기준일자, phone and the KST "
    "update times converted",
    requirements=["CAM-005", "CAM-007"],
    profile=CORE,
    kind="positive",
    timeout=30.0,
)
async def dataset_conversions(ctx: CaseContext) -> None:
    rows = ctx.fixtures.dataset_cameras
    if not rows:
        ctx.skip("the declaration has no fixtures.dataset_cameras (CCTV rows and their expected fields)")
    cameras = ctx.stub(camera_pb2_grpc.CameraServiceStub, "CENTER_OPERATOR")
    wrong: list[str] = []
    for row in rows:
        name = f"{ctx.center()}/cameras/{camera_id(row.management_number)}"
        camera = await expect_ok(cameras.GetCamera(C.GetCameraRequest(name=name)), f"GetCamera {name}")
        check(
            camera.management_number == row.management_number,
            f"{name}: management_number {camera.management_number!r}, not {row.management_number!r} "
            "[CAM-001]",
        )
        published = json_format.MessageToDict(camera, preserving_proto_field_name=True)
        for path, expected in row.expected.items():
            got = _at(published, path)
            if got != expected and str(got) != str(expected):
                wrong.append(f"{name} {path}: published {got!r}, the dataset row gives {expected!r}")
    # CAM-005: never a value that breaks its pattern (an empty field is allowed).
    page = await expect_ok(
        cameras.ListCameras(C.ListCamerasRequest(parent=ctx.center(), page_size=1000)), "ListCameras"
    )
    for camera in page.cameras:
        for violation in protovalidate.collect_violations(camera):
            field = (
                ".".join(e.field_name for e in violation.proto.field.elements)
                if violation.proto.field
                else ""
            )
            if field in CAM_005_FIELDS:
                wrong.append(f"{camera.name} {field}: {violation.proto.message}")
    check(not wrong, "; ".join(wrong[:20]) + " [CAM-005] [CAM-007]")
