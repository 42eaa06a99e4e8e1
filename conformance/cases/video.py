"""Video grant and access record cases (spec §12.3–§12.7, §4): grant conditions in order, tokens
checked offline as a gateway would, views per caller, revocation, expiry, idempotent retries, and
the access record's hash chain recomputed independently of the target.

Every grant is made for a TEST emergency the case raises itself at ``fixtures.camera_location``
(``video_setup.incident``); records are looked up by that emergency, so concurrent cases never see
each other's data.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import grpc
from ansim.v1 import camera_pb2, camera_pb2_grpc, common_pb2, error_pb2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.timestamp_pb2 import Timestamp

from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.video_setup import agency, cancel, grant_request, incident, near_cameras, uid
from conformance.expect import fail

PROFILE = "center-core"
C = camera_pb2
DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
HEADER_MEMBERS = {"alg", "typ", "kid"}
CLAIMS = {
    "iss",
    "aud",
    "sub",
    "agency",
    "grant",
    "camera",
    "channel",
    "emergency",
    "mode",
    "iat",
    "nbf",
    "exp",
    "jti",
}


def _stub(ctx: CaseContext, role: str) -> Any:
    return ctx.stub(camera_pb2_grpc.CameraServiceStub, role)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the access record, recomputed as spec §12.7 defines it --------------------------------------------


def _time(stamp: Timestamp, present: bool) -> str:
    if not present:
        return ""
    return stamp.ToDatetime(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _subject(record: C.AccessRecord, field: Literal["subject", "actor"]) -> list[str]:
    if not record.HasField(field):
        return ["", "ROLE_UNSPECIFIED", "", ""]
    s = getattr(record, field)
    return [s.id, common_pb2.Role.Name(s.role), s.agency, s.center]


def canonical_hash(record: C.AccessRecord) -> str:
    lines = [
        str(record.sequence),
        _time(record.record_time, record.HasField("record_time")),
        C.AccessOutcome.Name(record.outcome),
        record.name,
        record.video_grant,
        record.emergency,
        record.agency,
        *_subject(record, "subject"),
        *_subject(record, "actor"),
        ",".join(record.cameras),
        record.purpose,
        common_pb2.Mode.Name(record.mode),
        error_pb2.ErrorReason.Name(record.denial_reason),
        C.VideoGrantRevocationReason.Name(record.revocation_reason),
        _time(record.not_before, record.HasField("not_before")),
        _time(record.not_after, record.HasField("not_after")),
        record.request_id,
        record.previous_hash,
    ]
    text = "\n".join(line.replace("\\", "\\\\").replace("\n", "\\n") for line in lines)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def records_of(ctx: CaseContext, emergency: str, role: str = "AUDITOR") -> list[C.AccessRecord]:
    listed = await expect_ok(
        _stub(ctx, role).ListAccessRecords(
            C.ListAccessRecordsRequest(parent=ctx.center(), emergency=emergency, page_size=1000)
        ),
        f"ListAccessRecords of the case's emergency as {role}",
    )
    for record in listed.access_records:
        check(
            canonical_hash(record) == record.record_hash,
            f"{record.name}: record_hash is not the SHA-256 of its canonical form [VID-020]",
        )
    return list(listed.access_records)


def outcomes(records: list[C.AccessRecord]) -> list[str]:
    return [C.AccessOutcome.Name(r.outcome).removeprefix("ACCESS_OUTCOME_") for r in records]


# --- tokens, checked as a gateway does (spec §12.6) ----------------------------------------------------


async def check_tokens(ctx: CaseContext, grant: C.VideoGrant) -> None:
    keys = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").GetVideoGatewayKeys(C.GetVideoGatewayKeysRequest(parent=ctx.center())),
        "GetVideoGatewayKeys",
    )
    by_id = {k.key_id: k for k in keys.keys}
    not_after = int(grant.not_after.seconds)
    for stream in grant.streams:
        check(
            bool(stream.uri) and bool(stream.token),
            f"stream {stream.camera}/{stream.channel} lacks uri or token [VID-010]",
        )
        parts = stream.token.split(".")
        check(len(parts) == 3, "a token is not a compact JWS [VID-016]")
        header, claims = json.loads(_b64(parts[0])), json.loads(_b64(parts[1]))
        check(
            set(header) == HEADER_MEMBERS and header["alg"] == "EdDSA" and header["typ"] == "ansim-video+jwt",
            f"token header {header} is not the one of §12.6 [VID-016]",
        )
        check(
            set(claims) == CLAIMS, f"token claims {sorted(claims)} are not exactly those of §12.6 [VID-016]"
        )
        key = by_id.get(header["kid"])
        check(key is not None, f"kid {header['kid']!r} is not among GetVideoGatewayKeys [VID-022]")
        assert key is not None
        check(len(key.public_key) == 32, "a gateway key is not 32 bytes [VID-022]")
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(
                _b64(parts[2]), f"{parts[0]}.{parts[1]}".encode()
            )
        except InvalidSignature:
            fail("a token's Ed25519 signature does not verify with its published key [VID-016]")
        check(
            key.not_before.seconds <= claims["iat"],
            "the signing key's not_before is after the token's iat [VID-016]",
        )
        check(
            claims["iss"] == ctx.center()
            and claims["grant"] == grant.name
            and claims["emergency"] == grant.emergency,
            "iss, grant or emergency claim does not match the grant [VID-016]",
        )
        check(
            claims["camera"] == stream.camera and claims["channel"] == stream.channel,
            "camera/channel claims differ from the stream",
        )
        check(
            claims["sub"] == grant.officer.id and claims["agency"] == grant.agency,
            "sub/agency claims are not the officer's",
        )
        check(
            claims["mode"] == "TEST" and claims["nbf"] == claims["iat"],
            "mode must be TEST and nbf equal iat [VID-016]",
        )
        check(0 < claims["exp"] - claims["iat"] <= 300, "a token lives more than 300 s [VID-010]")
        check(claims["exp"] <= not_after, "a token outlives the grant's not_after [VID-010]")
        check(
            stream.token_expire_time.seconds == claims["exp"],
            "token_expire_time is not the token's exp [VID-010]",
        )
        url = urlsplit(stream.uri)
        check(
            f"{url.scheme}://{url.netloc}" == claims["aud"],
            "aud is not the origin of the stream URI [VID-016]",
        )
        check(
            url.path.startswith("/test/"),
            f"a TEST grant's stream path {url.path!r} does not begin with /test/ [VID-007]",
        )
        check(stream.token not in stream.uri, "the stream URI contains the token")


# --- granting ----------------------------------------------------------------------------------------


@case(
    "TC_VID_001_SRV",
    title="CreateVideoGrant for cameras near an acknowledged emergency: ACTIVE, one stream per channel, "
    "offline-verifiable tokens, a GRANTED access record",
    requirements=["VID-001", "VID-009", "VID-010", "VID-016", "VID-022", "VID-007", "AUD-001", "PRV-013"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def grant_named_cameras(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 2)
    before = datetime.now(UTC)
    request = grant_request(ctx, found.emergency, [c.name for c in cameras], seconds=900)
    grant = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(request), "CreateVideoGrant as the dispatched officer"
    )
    check(
        grant.state == C.VIDEO_GRANT_STATE_ACTIVE,
        f"the grant is {C.VideoGrantState.Name(grant.state)}, not ACTIVE",
    )
    check(list(grant.cameras) == [c.name for c in cameras], "the granted cameras differ from those asked for")
    check(
        grant.not_after.ToSeconds() - grant.create_time.ToSeconds() == 900
        and grant.not_after.nanos == grant.create_time.nanos,
        "not_after is not create_time + requested_duration [VID-009]",
    )
    start = grant.create_time.ToDatetime(UTC)
    check(
        abs((start - before).total_seconds()) < 60,
        "the grant does not start now: only live video may be granted [PRV-013]",
    )
    channels = sorted((s.camera, s.channel) for s in grant.streams)
    wanted = sorted((c.name, n) for c in cameras for n in range(1, c.camera_count + 1))
    check(channels == wanted, "the grant has not exactly one stream per camera channel [VID-010]")
    await check_tokens(ctx, grant)
    records = await records_of(ctx, found.emergency)
    granted = [r for r in records if r.outcome == C.ACCESS_OUTCOME_GRANTED and r.video_grant == grant.name]
    check(len(granted) == 1, "no single GRANTED access record for the grant [VID-001]")
    record = granted[0]
    check(
        record.request_id == request.request_id and list(record.cameras) == list(grant.cameras),
        "the GRANTED record misses request_id or cameras",
    )
    check(
        record.not_after == grant.not_after and record.not_before == grant.create_time,
        "the GRANTED record's validity differs from the grant",
    )


@case(
    "TC_VID_002_SRV",
    title="CreateVideoGrant with nearby grants what SearchNearbyCameras returns for the emergency",
    requirements=["VID-005"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def grant_nearby(ctx: CaseContext) -> None:
    found = await incident(ctx)
    search = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").SearchNearbyCameras(
            C.SearchNearbyCamerasRequest(
                parent=ctx.center(), emergency=found.emergency, radius_m=400, limit=3
            )
        ),
        "SearchNearbyCameras from the emergency",
    )
    check(len(search.results) > 0, "no camera within 400 m of fixtures.camera_location")
    nearby = C.NearbySelection(radius_m=400, limit=3)
    grant = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(grant_request(ctx, found.emergency, nearby=nearby)),
        "CreateVideoGrant with nearby",
    )
    check(
        list(grant.cameras) == [r.camera.name for r in search.results],
        "nearby did not grant the cameras the search returns [VID-005]",
    )


async def _denied(
    ctx: CaseContext,
    request: C.CreateVideoGrantRequest,
    code: grpc.StatusCode,
    reason: str,
    what: str,
    role: str = "POLICE_OFFICER",
) -> None:
    await expect_error(_stub(ctx, role).CreateVideoGrant(request), code=code, reason=reason, what=what)
    records = await records_of(ctx, request.video_grant.emergency)
    mine = [r for r in records if r.request_id == request.request_id]
    check(
        len(mine) == 1 and mine[0].outcome == C.ACCESS_OUTCOME_DENIED,
        f"{what}: no DENIED access record for the refusal [VID-001]",
    )
    check(
        error_pb2.ErrorReason.Name(mine[0].denial_reason) == f"ERROR_REASON_{reason}",
        f"{what}: denial_reason is not {reason} [VID-001]",
    )
    check(not mine[0].video_grant, "a DENIED record names a grant")


@case(
    "TC_VID_003_SRV",
    title="CreateVideoGrant for an unknown emergency fails NOT_FOUND and is recorded as DENIED",
    requirements=["VID-002", "VID-001"],
    profile=PROFILE,
    kind="negative",
)
async def grant_unknown_emergency(ctx: CaseContext) -> None:
    unknown = f"{ctx.center()}/emergencies/{uid(ctx, 'emg')}"
    await _denied(
        ctx,
        grant_request(ctx, unknown, [f"{ctx.center()}/cameras/x1"]),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "an unknown emergency",
    )


@case(
    "TC_VID_004_SRV",
    title="CreateVideoGrant for a cancelled emergency fails EMERGENCY_NOT_ACTIVE",
    requirements=["VID-002", "PRV-001", "VID-001"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def grant_ended_emergency(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    await cancel(ctx, found)
    await _denied(
        ctx,
        grant_request(ctx, found.emergency, [cameras[0].name]),
        PRECONDITION,
        "EMERGENCY_NOT_ACTIVE",
        "a cancelled emergency",
    )


@case(
    "TC_VID_005_SRV",
    title="CreateVideoGrant before the agency acknowledged its dispatch fails DISPATCH_NOT_ACKNOWLEDGED",
    requirements=["VID-004", "VID-001"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def grant_unacknowledged(ctx: CaseContext) -> None:
    found = await incident(ctx, acknowledge=False)
    cameras = await near_cameras(ctx, found.emergency, 1)
    await _denied(
        ctx,
        grant_request(ctx, found.emergency, [cameras[0].name]),
        PRECONDITION,
        "DISPATCH_NOT_ACKNOWLEDGED",
        "a pending dispatch",
    )
    fire = agency(ctx, "FIRE_119")
    await _denied(
        ctx,
        grant_request(ctx, found.emergency, [cameras[0].name], agency_name=fire),
        PRECONDITION,
        "DISPATCH_NOT_ACKNOWLEDGED",
        "an agency without a dispatch",
        role="FIRE_OFFICER",
    )


@case(
    "TC_VID_006_SRV",
    title="CreateVideoGrant whose mode differs from the emergency's fails MODE_MISMATCH",
    requirements=["VID-006"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def grant_mode_mismatch(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    request = grant_request(ctx, found.emergency, [cameras[0].name])
    request.video_grant.mode = common_pb2.MODE_EXERCISE
    await _denied(ctx, request, PRECONDITION, "MODE_MISMATCH", "an EXERCISE grant for a TEST emergency")


@case(
    "TC_VID_007_SRV",
    title="CreateVideoGrant naming another agency than the token's fails NOT_OWNER",
    requirements=["VID-003", "SEC-011"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def grant_other_agency(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    police = agency(ctx)
    await _denied(
        ctx,
        grant_request(ctx, found.emergency, [cameras[0].name], agency_name=police),
        DENIED,
        "NOT_OWNER",
        "a fire officer asking in the police agency's name",
        role="FIRE_OFFICER",
    )


@case(
    "TC_VID_008_SRV",
    title="CreateVideoGrant: an unknown camera is NOT_FOUND, one beyond 1000 m CAMERA_NOT_NEAR_EMERGENCY",
    requirements=["VID-008", "VID-001"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def grant_bad_cameras(ctx: CaseContext) -> None:
    found = await incident(ctx)
    near = await near_cameras(ctx, found.emergency, 1)
    unknown = f"{ctx.center()}/cameras/{uid(ctx, 'cam')}"
    await _denied(
        ctx,
        grant_request(ctx, found.emergency, [near[0].name, unknown]),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "an unknown camera",
    )
    lat, lon = found.location
    wide = await expect_ok(
        _stub(ctx, "CENTER_OPERATOR").SearchNearbyCameras(
            C.SearchNearbyCamerasRequest(
                parent=ctx.center(),
                point=common_pb2.Point(latitude=lat, longitude=lon),
                radius_m=2000,
                limit=100,
            )
        ),
        "SearchNearbyCameras, 2000 m",
    )
    far = [r.camera.name for r in wide.results if r.distance_m > 1001]
    if not far:
        ctx.note("no camera 1000-2000 m from fixtures.camera_location: the distance refusal was not checked")
        return
    await _denied(
        ctx,
        grant_request(ctx, found.emergency, [near[0].name, far[0]]),
        PRECONDITION,
        "CAMERA_NOT_NEAR_EMERGENCY",
        "a camera beyond 1000 m",
    )


@case(
    "TC_VID_009_SRV",
    title="When several conditions fail, CreateVideoGrant reports the first in the order of §12.3",
    requirements=["VID-017"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def grant_condition_order(ctx: CaseContext) -> None:
    unknown = f"{ctx.center()}/emergencies/{uid(ctx, 'emg')}"
    # 3 (agency) before 4 (emergency)
    request = grant_request(ctx, unknown, [f"{ctx.center()}/cameras/x1"], agency_name=agency(ctx, "FIRE_119"))
    await expect_error(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(request),
        code=DENIED,
        reason="NOT_OWNER",
        what="agency and emergency wrong",
    )
    found = await incident(ctx, acknowledge=False)
    # 6 (mode) before 7 (dispatch) before 8 (camera)
    request = grant_request(ctx, found.emergency, [f"{ctx.center()}/cameras/{uid(ctx, 'cam')}"])
    request.video_grant.mode = common_pb2.MODE_EXERCISE
    await expect_error(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(request),
        code=PRECONDITION,
        reason="MODE_MISMATCH",
        what="mode, dispatch and camera wrong",
    )
    request = grant_request(ctx, found.emergency, [f"{ctx.center()}/cameras/{uid(ctx, 'cam')}"])
    await expect_error(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(request),
        code=PRECONDITION,
        reason="DISPATCH_NOT_ACKNOWLEDGED",
        what="dispatch and camera wrong",
    )


@case(
    "TC_VID_010_SRV",
    title="Invalid CreateVideoGrant requests fail INVALID_FIELD and are not recorded",
    requirements=["VID-009", "VID-005", "IDM-001", "ERR-003"],
    profile=PROFILE,
    kind="negative",
)
async def grant_invalid(ctx: CaseContext) -> None:
    emergency = f"{ctx.center()}/emergencies/{uid(ctx, 'emg')}"
    camera = [f"{ctx.center()}/cameras/x1"]
    stub = _stub(ctx, "POLICE_OFFICER")
    for seconds in (0, 1801):
        await expect_error(
            stub.CreateVideoGrant(grant_request(ctx, emergency, camera, seconds=seconds)),
            code=INVALID,
            reason="INVALID_FIELD",
            field="video_grant.requested_duration",
            what=f"requested_duration {seconds} s",
        )
    many = grant_request(ctx, emergency, [f"{ctx.center()}/cameras/x{n}" for n in range(17)])
    await expect_error(
        stub.CreateVideoGrant(many),
        code=INVALID,
        reason="INVALID_FIELD",
        field="video_grant.cameras",
        what="17 cameras",
    )
    no_id = grant_request(ctx, emergency, camera)
    no_id.request_id = "not-a-uuid"
    await expect_error(
        stub.CreateVideoGrant(no_id),
        code=INVALID,
        reason="INVALID_FIELD",
        field="request_id",
        what="a malformed request_id",
    )
    check(
        not await records_of(ctx, emergency, "CENTER_OPERATOR"),
        "an invalid request was written to the access record [VID-001]",
    )


@case(
    "TC_VID_011_SRV",
    title="Only police and fire officers may create grants; auditors never reach a grant",
    requirements=["VID-003", "VID-026", "AUD-005", "SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def grant_roles(ctx: CaseContext) -> None:
    emergency = f"{ctx.center()}/emergencies/{uid(ctx, 'emg')}"
    for role in ("CENTER_OPERATOR", "AUDITOR", "APP_USER", "PEER_CENTER"):
        await expect_error(
            _stub(ctx, role).CreateVideoGrant(grant_request(ctx, emergency, [f"{ctx.center()}/cameras/x1"])),
            code=DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"CreateVideoGrant as {role}",
        )
    name = f"{ctx.center()}/videoGrants/{uid(ctx, 'vg')}"
    auditor = _stub(ctx, "AUDITOR")
    await expect_error(
        auditor.GetVideoGrant(C.GetVideoGrantRequest(name=name)),
        code=DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="GetVideoGrant as AUDITOR",
    )
    await expect_error(
        auditor.RevokeVideoGrant(C.RevokeVideoGrantRequest(name=name, request_id=ctx.request_id(), note="x")),
        code=DENIED,
        reason="ROLE_NOT_PERMITTED",
        what="RevokeVideoGrant as AUDITOR",
    )


@case(
    "TC_VID_012_SRV",
    title="A retried CreateVideoGrant returns the first outcome (grant or error) without a second record; "
    "a reused request_id with another payload fails REQUEST_ID_REUSED",
    requirements=["VID-025", "IDM-002", "IDM-003"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def grant_retry(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    stub = _stub(ctx, "POLICE_OFFICER")
    request = grant_request(ctx, found.emergency, [cameras[0].name])
    first = await expect_ok(stub.CreateVideoGrant(request), "CreateVideoGrant")
    again = await expect_ok(stub.CreateVideoGrant(request), "the same CreateVideoGrant again")
    check(again.name == first.name, "the retry created another grant [VID-025]")
    refused = grant_request(ctx, found.emergency, [f"{ctx.center()}/cameras/{uid(ctx, 'cam')}"])
    for _ in range(2):
        await expect_error(
            stub.CreateVideoGrant(refused),
            code=NOT_FOUND,
            reason="RESOURCE_NOT_FOUND",
            what="an unknown camera (and its retry)",
        )
    changed = C.CreateVideoGrantRequest()
    changed.CopyFrom(request)
    changed.video_grant.purpose = "another purpose"
    await expect_error(
        stub.CreateVideoGrant(changed),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="REQUEST_ID_REUSED",
        what="a reused request_id",
    )
    records = await records_of(ctx, found.emergency)
    check(
        outcomes([r for r in records if r.request_id == request.request_id]) == ["GRANTED"],
        "the retry appended another record [VID-025]",
    )
    check(
        outcomes([r for r in records if r.request_id == refused.request_id]) == ["DENIED"],
        "the refused retry appended another record [VID-025]",
    )


@case(
    "TC_VID_013_SRV",
    title="GetVideoGrant: uri and token for the grant's own officer only; other agencies get NOT_OWNER",
    requirements=["VID-012", "VID-026", "SEC-011"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def grant_views(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    grant = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(grant_request(ctx, found.emergency, [cameras[0].name])),
        "CreateVideoGrant",
    )
    get = C.GetVideoGrantRequest(name=grant.name)
    own = await expect_ok(_stub(ctx, "POLICE_OFFICER").GetVideoGrant(get), "GetVideoGrant by its officer")
    check(all(s.uri and s.token for s in own.streams), "the grant's officer gets no uri/token [VID-012]")
    now = datetime.now(UTC).timestamp()
    check(
        all(
            s.token_expire_time.seconds - now >= 55 or s.token_expire_time == own.not_after
            for s in own.streams
        ),
        "a token with less than 60 s left [VID-012]",
    )
    seen = await expect_ok(_stub(ctx, "CENTER_OPERATOR").GetVideoGrant(get), "GetVideoGrant by an operator")
    check(
        seen.name == grant.name and all(not s.uri and not s.token for s in seen.streams),
        "an operator got a uri or token [VID-012]",
    )
    await expect_error(
        _stub(ctx, "FIRE_OFFICER").GetVideoGrant(get),
        code=DENIED,
        reason="NOT_OWNER",
        what="GetVideoGrant by another agency",
    )


@case(
    "TC_VID_014_SRV",
    title="RevokeVideoGrant by the officer (RELEASED), then again (GRANT_NOT_ACTIVE); REVOKED recorded",
    requirements=["VID-015", "VID-014", "VID-001", "VID-012"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def revoke_released(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    police = _stub(ctx, "POLICE_OFFICER")
    grant = await expect_ok(
        police.CreateVideoGrant(grant_request(ctx, found.emergency, [cameras[0].name])), "CreateVideoGrant"
    )
    await expect_error(
        _stub(ctx, "FIRE_OFFICER").RevokeVideoGrant(
            C.RevokeVideoGrantRequest(name=grant.name, request_id=ctx.request_id(), note="x")
        ),
        code=DENIED,
        reason="NOT_OWNER",
        what="RevokeVideoGrant by another agency",
    )
    revoke = C.RevokeVideoGrantRequest(name=grant.name, request_id=ctx.request_id(), note="현장 확인 완료")
    ended = await expect_ok(police.RevokeVideoGrant(revoke), "RevokeVideoGrant by the officer")
    check(
        ended.state == C.VIDEO_GRANT_STATE_REVOKED
        and ended.revocation_reason == C.VIDEO_GRANT_REVOCATION_REASON_RELEASED,
        "an officer's revocation is not REVOKED / RELEASED [VID-015]",
    )
    check(
        ended.revocation_note == revoke.note and ended.HasField("end_time"),
        "revocation_note or end_time missing [VID-015]",
    )
    retry = await expect_ok(police.RevokeVideoGrant(revoke), "the same RevokeVideoGrant again")
    check(
        retry.name == grant.name and retry.state == C.VIDEO_GRANT_STATE_REVOKED,
        "the retried revocation differs [VID-025]",
    )
    await expect_error(
        police.RevokeVideoGrant(
            C.RevokeVideoGrantRequest(name=grant.name, request_id=ctx.request_id(), note="again")
        ),
        code=PRECONDITION,
        reason="GRANT_NOT_ACTIVE",
        what="revoking a revoked grant",
    )
    after = await expect_ok(
        police.GetVideoGrant(C.GetVideoGrantRequest(name=grant.name)), "GetVideoGrant after revocation"
    )
    check(
        all(not s.uri and not s.token for s in after.streams),
        "a revoked grant still hands out tokens [VID-012, VID-014]",
    )
    records = await records_of(ctx, found.emergency)
    revoked = [r for r in records if r.outcome == C.ACCESS_OUTCOME_REVOKED and r.video_grant == grant.name]
    check(len(revoked) == 1, "not exactly one REVOKED record for the revocation [VID-001, VID-025]")
    check(
        revoked[0].actor.id == grant.officer.id and revoked[0].request_id == revoke.request_id,
        "the REVOKED record lacks its actor or request_id",
    )


@case(
    "TC_VID_015_SRV",
    title="RevokeVideoGrant by a center operator ends the grant with reason OPERATOR",
    requirements=["VID-015"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def revoke_operator(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    grant = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(grant_request(ctx, found.emergency, [cameras[0].name])),
        "CreateVideoGrant",
    )
    ended = await expect_ok(
        _stub(ctx, "CENTER_OPERATOR").RevokeVideoGrant(
            C.RevokeVideoGrantRequest(name=grant.name, request_id=ctx.request_id(), note="operator")
        ),
        "RevokeVideoGrant by an operator",
    )
    check(
        ended.revocation_reason == C.VIDEO_GRANT_REVOCATION_REASON_OPERATOR,
        "an operator's revocation is not OPERATOR [VID-015]",
    )


async def _poll_grant(
    ctx: CaseContext, name: str, seconds: float, done: Callable[[C.VideoGrant], bool]
) -> C.VideoGrant:
    stub = _stub(ctx, "CENTER_OPERATOR")
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        grant: C.VideoGrant = await expect_ok(
            stub.GetVideoGrant(C.GetVideoGrantRequest(name=name)), "GetVideoGrant"
        )
        if done(grant) or asyncio.get_running_loop().time() > deadline:
            return grant
        await asyncio.sleep(0.25)


@case(
    "TC_VID_016_SRV",
    title="Cancelling the emergency revokes its grants (EMERGENCY_ENDED) within 2 s; no more video after",
    requirements=["VID-013", "PRV-001", "VID-001"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def revoke_on_emergency_end(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    grant = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(grant_request(ctx, found.emergency, [cameras[0].name])),
        "CreateVideoGrant",
    )
    await cancel(ctx, found)
    ended = await _poll_grant(ctx, grant.name, 2.5, lambda g: g.state != C.VIDEO_GRANT_STATE_ACTIVE)
    check(
        ended.state == C.VIDEO_GRANT_STATE_REVOKED
        and ended.revocation_reason == C.VIDEO_GRANT_REVOCATION_REASON_EMERGENCY_ENDED,
        "the grant was not REVOKED / EMERGENCY_ENDED within 2 s of the cancellation [VID-013]",
    )
    own = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").GetVideoGrant(C.GetVideoGrantRequest(name=grant.name)),
        "GetVideoGrant by its officer",
    )
    check(
        all(not s.uri and not s.token for s in own.streams),
        "video tokens after the emergency ended [PRV-001]",
    )
    records = await records_of(ctx, found.emergency)
    check(
        "REVOKED" in outcomes([r for r in records if r.video_grant == grant.name]),
        "no REVOKED record for the automatic revocation [VID-001]",
    )


@case(
    "TC_VID_017_SRV",
    title="A grant becomes EXPIRED at not_after (end_time = not_after) and an EXPIRED record follows",
    requirements=["VID-011", "VID-001"],
    profile=PROFILE,
    kind="positive",
    timeout=90.0,
)
async def grant_expires(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    grant = await expect_ok(
        _stub(ctx, "POLICE_OFFICER").CreateVideoGrant(
            grant_request(ctx, found.emergency, [cameras[0].name], seconds=2)
        ),
        "a 2-second grant",
    )
    await asyncio.sleep(
        max(0.0, grant.not_after.ToDatetime(UTC).timestamp() - datetime.now(UTC).timestamp()) + 0.5
    )
    expired = await _poll_grant(ctx, grant.name, 0, lambda g: True)
    check(
        expired.state == C.VIDEO_GRANT_STATE_EXPIRED
        and expired.revocation_reason == C.VIDEO_GRANT_REVOCATION_REASON_EXPIRED,
        "the grant is not EXPIRED / EXPIRED after not_after [VID-011]",
    )
    check(expired.end_time == grant.not_after, "end_time is not not_after [VID-011]")
    deadline = asyncio.get_running_loop().time() + 62
    while True:
        records = await records_of(ctx, found.emergency)
        if "EXPIRED" in outcomes([r for r in records if r.video_grant == grant.name]):
            return
        if asyncio.get_running_loop().time() > deadline:
            fail("no EXPIRED access record within 60 s after not_after [VID-001]")
        await asyncio.sleep(1.0)


# --- the access record -------------------------------------------------------------------------------


@case(
    "TC_VID_018_SRV",
    title="The access record is one gap-free hash chain an auditor can recompute, with its head",
    requirements=["VID-019", "VID-020", "VID-021", "AUD-005"],
    profile=PROFILE,
    kind="positive",
    timeout=60.0,
)
async def access_chain(ctx: CaseContext) -> None:
    auditor = _stub(ctx, "AUDITOR")
    token, previous, expected = "", None, None
    head: tuple[int, str] = (0, "")
    last: C.AccessRecord | None = None
    for _ in range(1000):
        page = await expect_ok(
            auditor.ListAccessRecords(
                C.ListAccessRecordsRequest(parent=ctx.center(), page_size=1000, page_token=token)
            ),
            "ListAccessRecords without filters as AUDITOR",
        )
        if expected is None:
            expected = page.oldest_retained_sequence or 1
        for record in page.access_records:
            check(
                record.sequence == expected,
                f"sequence {record.sequence} where {expected} was due: a gap [VID-019]",
            )
            check(
                record.name == f"{ctx.center()}/accessRecords/{record.sequence}",
                f"{record.name}: id is not the sequence [VID-019]",
            )
            if previous is not None:
                check(
                    record.previous_hash == previous,
                    f"{record.name}: previous_hash breaks the chain [VID-020]",
                )
            elif record.sequence == 1:
                check(record.previous_hash == "0" * 64, "record 1's previous_hash is not 64 zeros [VID-020]")
            check(
                canonical_hash(record) == record.record_hash,
                f"{record.name}: record_hash does not recompute [VID-020]",
            )
            check(
                record.record_time.nanos % 1000 == 0,
                f"{record.name}: record_time finer than microseconds [VID-020]",
            )
            previous, expected, last = record.record_hash, record.sequence + 1, record
        head = (page.head_sequence, page.head_hash)
        token = page.next_page_token
        if not token:
            break
    if last is None:
        check(head == (0, ""), "an empty record with a head [VID-021]")
        return
    check(head[0] >= last.sequence, "head_sequence is older than the last record listed [VID-021]")
    if head[0] == last.sequence:
        check(head[1] == last.record_hash, "head_hash is not the newest record's hash [VID-021]")


@case(
    "TC_VID_019_SRV",
    title="ListAccessRecords filters by emergency, agency, outcome, time and min_sequence, in sequence order",
    requirements=["VID-018"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def access_filters(ctx: CaseContext) -> None:
    found = await incident(ctx)
    cameras = await near_cameras(ctx, found.emergency, 1)
    police = _stub(ctx, "POLICE_OFFICER")
    await expect_ok(
        police.CreateVideoGrant(grant_request(ctx, found.emergency, [cameras[0].name])), "CreateVideoGrant"
    )
    refused = grant_request(ctx, found.emergency, [f"{ctx.center()}/cameras/{uid(ctx, 'cam')}"])
    await expect_error(
        police.CreateVideoGrant(refused),
        code=NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
        what="an unknown camera",
    )
    records = await records_of(ctx, found.emergency, "CENTER_OPERATOR")
    check(
        outcomes(records) == ["GRANTED", "DENIED"],
        f"the emergency's records are {outcomes(records)}, not GRANTED, DENIED [VID-018]",
    )
    operator = _stub(ctx, "CENTER_OPERATOR")

    async def listed(**filters: Any) -> list[C.AccessRecord]:
        page = await expect_ok(
            operator.ListAccessRecords(
                C.ListAccessRecordsRequest(parent=ctx.center(), emergency=found.emergency, **filters)
            ),
            f"ListAccessRecords {filters}",
        )
        return list(page.access_records)

    check(
        outcomes(await listed(outcome=C.ACCESS_OUTCOME_DENIED)) == ["DENIED"],
        "the outcome filter is not applied [VID-018]",
    )
    check(
        outcomes(await listed(agency=agency(ctx))) == ["GRANTED", "DENIED"],
        "the agency filter drops records [VID-018]",
    )
    check(
        await listed(agency="agencies/conformance-nobody") == [], "the agency filter is not applied [VID-018]"
    )
    check(
        outcomes(await listed(min_sequence=records[1].sequence)) == ["DENIED"],
        "min_sequence is not applied [VID-018]",
    )
    second = records[1].record_time
    check(
        outcomes(await listed(start_time=second)) == ["DENIED"],
        "start_time is not inclusive or not applied [VID-018]",
    )
    check(
        outcomes(await listed(end_time=second)) == ["GRANTED"],
        "end_time is not exclusive or not applied [VID-018]",
    )


@case(
    "TC_VID_020_SRV",
    title="ListAccessRecords is refused to officers and rejects page tokens it did not issue",
    requirements=["SEC-010", "GEN-021"],
    profile=PROFILE,
    kind="negative",
)
async def access_denials(ctx: CaseContext) -> None:
    for role in ("POLICE_OFFICER", "FIRE_OFFICER", "APP_USER"):
        await expect_error(
            _stub(ctx, role).ListAccessRecords(C.ListAccessRecordsRequest(parent=ctx.center())),
            code=DENIED,
            reason="ROLE_NOT_PERMITTED",
            what=f"ListAccessRecords as {role}",
        )
    await expect_error(
        _stub(ctx, "AUDITOR").ListAccessRecords(
            C.ListAccessRecordsRequest(parent=ctx.center(), page_token="Zm9yZ2Vk")
        ),
        code=INVALID,
        reason="PAGE_TOKEN_INVALID",
        what="a made-up page_token",
    )


@case(
    "TC_VID_021_SRV",
    title="GetVideoGatewayKeys answers without a token with 32-byte Ed25519 keys and a refresh interval",
    requirements=["VID-022", "SEC-013"],
    profile=PROFILE,
    kind="positive",
)
async def gateway_keys(ctx: CaseContext) -> None:
    keys = await expect_ok(
        _stub(ctx, "APP_USER").GetVideoGatewayKeys(C.GetVideoGatewayKeysRequest(parent=ctx.center())),
        "GetVideoGatewayKeys",
    )
    plain: Any = ctx.stub(camera_pb2_grpc.CameraServiceStub, None)
    public = await expect_ok(
        plain.GetVideoGatewayKeys(C.GetVideoGatewayKeysRequest(parent=ctx.center())),
        "GetVideoGatewayKeys without a token",
    )
    check(public == keys, "the keys differ with and without a token")
    check(
        keys.center == ctx.center() and 1 <= len(keys.keys) <= 10, "center or number of keys wrong [VID-022]"
    )
    check(all(len(k.public_key) == 32 for k in keys.keys), "a key is not 32 bytes [VID-022]")
    check(0 < keys.refresh_interval.seconds <= 3600, "refresh_interval not in (0, 1 h] [VID-023]")


@case(
    "TC_VID_022_SRV",
    title="GetVideoGrant of an unknown grant fails NOT_FOUND, of a malformed name INVALID_FIELD",
    requirements=["GEN-023"],
    profile=PROFILE,
    kind="negative",
)
async def get_unknown_grant(ctx: CaseContext) -> None:
    stub = _stub(ctx, "CENTER_OPERATOR")
    name = f"{ctx.center()}/videoGrants/{uid(ctx, 'vg')}"
    await expect_error(
        stub.GetVideoGrant(C.GetVideoGrantRequest(name=name)), code=NOT_FOUND, reason="RESOURCE_NOT_FOUND"
    )
    await expect_error(
        stub.GetVideoGrant(C.GetVideoGrantRequest(name=f"{ctx.center()}/grants/x")),
        code=INVALID,
        reason="INVALID_FIELD",
        field="name",
    )
    await expect_error(
        stub.RevokeVideoGrant(C.RevokeVideoGrantRequest(name=name, request_id=ctx.request_id(), note="x")),
        code=NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
        what="revoking an unknown grant",
    )
