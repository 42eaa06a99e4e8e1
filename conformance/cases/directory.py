"""Directory cases (spec §16): registration, updates, the trust registry list, signed resolution.

Every entry a case registers is a test center named ``centers/conformance-<run>-…`` whose service
area is a small circle far out in the Yellow Sea, so that it never competes with a real center;
entries cannot be deleted, so clean-up suspends them.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import grpc
from ansim.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import field_mask_pb2

from conformance import CaseContext, case, check, expect_error, expect_ok

PROFILE = "directory"
ADMIN = "DIRECTORY_ADMIN"
SIGNING_CONTEXT = b"ansim.v1.ResolveCenterAnswer\x00"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _stub(ctx: CaseContext, role: str | None = ADMIN) -> Any:
    return ctx.stub(directory_pb2_grpc.DirectoryServiceStub, role)


def _spot() -> tuple[float, float]:
    """A point in the open Yellow Sea (no municipality within tens of kilometres)."""
    return 34.6 + random.random() * 0.4, 124.2 + random.random() * 0.3


def _fingerprint() -> str:
    return "".join(random.choice("0123456789abcdef") for _ in range(64))


def _entry(ctx: CaseContext, lat: float, lon: float, radius_m: float = 500.0) -> directory_pb2.CenterEntry:
    name = f"centers/{ctx.resource_id('c')}-{uuid.uuid4().hex[:6]}"
    return directory_pb2.CenterEntry(
        name=name,
        display_name_ko="적합성 시험 센터",
        display_name_en="Conformance test center",
        municipalities=[common_pb2.AdministrativeCodes(statistics_code="11010")],
        service_area=common_pb2.Area(
            circles=[
                common_pb2.Area.Circle(
                    center=common_pb2.Point(latitude=lat, longitude=lon), radius_m=radius_m
                )
            ]
        ),
        endpoints=[
            directory_pb2.CenterEndpoint(
                target="conformance.invalid:443", tls_server_name="conformance.invalid"
            )
        ],
        certificates=[directory_pb2.CertificatePin(sha256_fingerprint=_fingerprint())],
        supported_profiles=["center-core", "federation"],
        spec_version="1.0.0-alpha.1",
        contacts=[
            directory_pb2.CenterContact(
                kind=directory_pb2.CENTER_CONTACT_KIND_OPERATIONS,
                display_name="시험 관제실",
                phone="02-000-0000",
            )
        ],
        agencies=[
            directory_pb2.ServingAgency(
                agency="agencies/conformance-112", kind=common_pb2.AGENCY_KIND_POLICE_112
            ),
            directory_pb2.ServingAgency(
                agency="agencies/conformance-119", kind=common_pb2.AGENCY_KIND_FIRE_119
            ),
        ],
    )


async def _create(ctx: CaseContext, entry: directory_pb2.CenterEntry) -> directory_pb2.CenterEntry:
    stub = _stub(ctx)
    created: directory_pb2.CenterEntry = await expect_ok(
        stub.CreateCenter(directory_pb2.CreateCenterRequest(center=entry, request_id=ctx.request_id())),
        "CreateCenter of a complete test entry",
    )

    async def suspend() -> None:
        current = await stub.GetCenter(directory_pb2.GetCenterRequest(name=entry.name))
        current.state = directory_pb2.CENTER_STATE_SUSPENDED
        await stub.UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=current,
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
                request_id=ctx.request_id(),
            )
        )

    ctx.on_cleanup(suspend)
    return created


def _location(lat: float, lon: float, radius_m: float) -> common_pb2.Location:
    location = common_pb2.Location(
        latitude=lat, longitude=lon, radius_m=radius_m, method=common_pb2.POSITIONING_METHOD_GNSS
    )
    location.fix_time.GetCurrentTime()
    return location


@case(
    "TC_DIR_001_SRV",
    title=(
        "CreateCenter stores the entry ACTIVE with create/update time, etag and"
        " revision; GetCenter returns it"
    ),
    requirements=["DIR-001", "DIR-007", "DIR-008"],
    profile=PROFILE,
    kind="positive",
)
async def create_and_get(ctx: CaseContext) -> None:
    entry = _entry(ctx, *_spot())
    created = await _create(ctx, entry)
    check(created.name == entry.name, "the stored entry keeps its name")
    check(created.state == directory_pb2.CENTER_STATE_ACTIVE, "state UNSPECIFIED is stored as ACTIVE")
    check(
        created.HasField("create_time") and created.HasField("update_time"),
        "create_time and update_time are set",
    )
    check(bool(created.etag) and created.revision > 0, "etag and revision are set")
    got = await expect_ok(_stub(ctx).GetCenter(directory_pb2.GetCenterRequest(name=entry.name)))
    check(got.revision == created.revision and got.etag == created.etag, "GetCenter returns the stored entry")


@case(
    "TC_DIR_002_SRV",
    title="CreateCenter of an existing name fails ALREADY_EXISTS",
    requirements=["DIR-001"],
    profile=PROFILE,
    kind="negative",
)
async def create_duplicate_name(ctx: CaseContext) -> None:
    entry = _entry(ctx, *_spot())
    await _create(ctx, entry)
    again = directory_pb2.CenterEntry()
    again.CopyFrom(entry)
    del again.certificates[:]
    again.certificates.add(sha256_fingerprint=_fingerprint())
    await expect_error(
        _stub(ctx).CreateCenter(directory_pb2.CreateCenterRequest(center=again, request_id=ctx.request_id())),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="ALREADY_EXISTS",
    )


@case(
    "TC_DIR_003_SRV",
    title="CreateCenter without a FIRE_119 agency fails INVALID_FIELD",
    requirements=["DIR-002"],
    profile=PROFILE,
    kind="negative",
)
async def create_incomplete(ctx: CaseContext) -> None:
    entry = _entry(ctx, *_spot())
    del entry.agencies[1:]
    await expect_error(
        _stub(ctx).CreateCenter(directory_pb2.CreateCenterRequest(center=entry, request_id=ctx.request_id())),
        code=INVALID,
        reason="INVALID_FIELD",
    )


@case(
    "TC_DIR_004_SRV",
    title="A fingerprint that is not 64 lower-case hex digits fails INVALID_FIELD",
    requirements=["DIR-003"],
    profile=PROFILE,
    kind="negative",
)
async def create_bad_fingerprint(ctx: CaseContext) -> None:
    entry = _entry(ctx, *_spot())
    entry.certificates[0].sha256_fingerprint = entry.certificates[0].sha256_fingerprint.upper()
    await expect_error(
        _stub(ctx).CreateCenter(directory_pb2.CreateCenterRequest(center=entry, request_id=ctx.request_id())),
        code=INVALID,
        reason="INVALID_FIELD",
        field="center.certificates[0].sha256_fingerprint",
    )


@case(
    "TC_DIR_005_SRV",
    title="A fingerprint registered for another center fails ALREADY_EXISTS",
    requirements=["DIR-004"],
    profile=PROFILE,
    kind="negative",
)
async def create_shared_fingerprint(ctx: CaseContext) -> None:
    first = await _create(ctx, _entry(ctx, *_spot()))
    second = _entry(ctx, *_spot())
    second.certificates[0].sha256_fingerprint = first.certificates[0].sha256_fingerprint
    await expect_error(
        _stub(ctx).CreateCenter(
            directory_pb2.CreateCenterRequest(center=second, request_id=ctx.request_id())
        ),
        code=grpc.StatusCode.ALREADY_EXISTS,
        reason="ALREADY_EXISTS",
    )


@case(
    "TC_DIR_006_SRV",
    title="UpdateCenter changes exactly the masked field with a new etag and a higher revision",
    requirements=["DIR-005", "DIR-007"],
    profile=PROFILE,
    kind="positive",
)
async def update_masked(ctx: CaseContext) -> None:
    created = await _create(ctx, _entry(ctx, *_spot()))
    change = directory_pb2.CenterEntry()
    change.CopyFrom(created)
    change.display_name_en = "Conformance test center (renamed)"
    change.display_name_ko = "바뀌지 않아야 함"
    updated = await expect_ok(
        _stub(ctx).UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=change,
                update_mask=field_mask_pb2.FieldMask(paths=["display_name_en"]),
                request_id=ctx.request_id(),
            )
        )
    )
    check(updated.display_name_en == change.display_name_en, "the masked field changed")
    check(updated.display_name_ko == created.display_name_ko, "a field outside the mask did not change")
    check(updated.etag != created.etag, "the etag changed")
    check(updated.revision > created.revision, "the revision grew")


@case(
    "TC_DIR_007_SRV",
    title="UpdateCenter with a stale etag fails ABORTED / ETAG_MISMATCH; an empty mask fails INVALID_FIELD",
    requirements=["DIR-005"],
    profile=PROFILE,
    kind="negative",
)
async def update_stale_etag(ctx: CaseContext) -> None:
    created = await _create(ctx, _entry(ctx, *_spot()))
    stale = directory_pb2.CenterEntry()
    stale.CopyFrom(created)
    stale.etag = "conformance-stale-etag"
    stale.display_name_en = "stale"
    await expect_error(
        _stub(ctx).UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=stale,
                update_mask=field_mask_pb2.FieldMask(paths=["display_name_en"]),
                request_id=ctx.request_id(),
            )
        ),
        code=grpc.StatusCode.ABORTED,
        reason="ETAG_MISMATCH",
    )
    await expect_error(
        _stub(ctx).UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=created, update_mask=field_mask_pb2.FieldMask(paths=[]), request_id=ctx.request_id()
            )
        ),
        code=INVALID,
        reason="INVALID_FIELD",
    )
    got = await expect_ok(_stub(ctx).GetCenter(directory_pb2.GetCenterRequest(name=created.name)))
    check(got.display_name_en == created.display_name_en, "a refused update changed nothing")


@case(
    "TC_DIR_008_SRV",
    title="A self-intersecting service-area ring fails INVALID_FIELD on that ring",
    requirements=["DIR-006"],
    profile=PROFILE,
    kind="negative",
)
async def bow_tie_ring(ctx: CaseContext) -> None:
    lat, lon = _spot()
    entry = _entry(ctx, lat, lon)
    entry.service_area.Clear()
    ring = entry.service_area.polygons.add()
    for dlat, dlon in ((0, 0), (0.01, 0.01), (0.01, 0), (0, 0.01)):  # a bow tie
        ring.vertices.add(latitude=lat + dlat, longitude=lon + dlon)
    await expect_error(
        _stub(ctx).CreateCenter(directory_pb2.CreateCenterRequest(center=entry, request_id=ctx.request_id())),
        code=INVALID,
        reason="INVALID_FIELD",
        field="center.service_area.polygons[0]",
    )


@case(
    "TC_DIR_009_SRV",
    title=(
        "ListCenters since a revision returns later entries, SUSPENDED included, in ascending revision order"
    ),
    requirements=["DIR-008"],
    profile=PROFILE,
    kind="positive",
)
async def list_since(ctx: CaseContext) -> None:
    stub = _stub(ctx)
    first = await _create(ctx, _entry(ctx, *_spot()))
    second = await _create(ctx, _entry(ctx, *_spot()))
    suspended = directory_pb2.CenterEntry()
    suspended.CopyFrom(second)
    suspended.state = directory_pb2.CENTER_STATE_SUSPENDED
    await expect_ok(
        stub.UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=suspended,
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
                request_id=ctx.request_id(),
            )
        )
    )
    seen: list[directory_pb2.CenterEntry] = []
    token = ""
    for _ in range(50):
        page = await expect_ok(
            stub.ListCenters(
                directory_pb2.ListCentersRequest(
                    page_size=2, page_token=token, since_revision=first.revision - 1
                )
            )
        )
        seen.extend(page.centers)
        token = page.next_page_token
        if not token:
            break
    revisions = [e.revision for e in seen]
    check(revisions == sorted(revisions), "entries come in ascending revision order across pages")
    check(all(r > first.revision - 1 for r in revisions), "only entries above since_revision are listed")
    names = {e.name: e for e in seen}
    check(first.name in names, "the first test entry is listed")
    check(
        second.name in names and names[second.name].state == directory_pb2.CENTER_STATE_SUSPENDED,
        "a SUSPENDED entry is listed, with its state",
    )


@case(
    "TC_DIR_010_SRV",
    title="ResolveCenter inside a test center's area: signed answer, CONTAINS, boundary, expiry 1–168 h",
    requirements=["DIR-010", "DIR-013", "DIR-015", "DIR-016"],
    profile=PROFILE,
    kind="positive",
)
async def resolve_signed(ctx: CaseContext) -> None:
    lat, lon = _spot()
    created = await _create(ctx, _entry(ctx, lat, lon, 2000.0))
    stub = _stub(ctx)
    response = await expect_ok(
        stub.ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=_location(lat, lon, 10.0), service="sos")
        )
    )
    keys = await expect_ok(stub.GetDirectoryKeys(directory_pb2.GetDirectoryKeysRequest()))
    key = next((k for k in keys.keys if k.key_id == response.signature.key_id), None)
    check(key is not None, f"the signing key {response.signature.key_id!r} is listed by GetDirectoryKeys")
    assert key is not None
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(
            response.signature.signature, SIGNING_CONTEXT + response.answer
        )
    except (InvalidSignature, ValueError):
        check(False, "the Ed25519 signature over 'ansim.v1.ResolveCenterAnswer\\0' + answer verifies")
    answer = directory_pb2.ResolveCenterAnswer.FromString(response.answer)
    resolved = answer.resolve_time.ToDatetime()
    check(
        key.not_before.ToDatetime() <= resolved <= key.not_after.ToDatetime(), "the key covers resolve_time"
    )
    lifetime = answer.expire_time.ToDatetime() - resolved
    check(
        timedelta(hours=1) <= lifetime <= timedelta(hours=168),
        f"expire_time is 1–168 h after resolve_time ({lifetime})",
    )
    ours = [c for c in answer.candidates if c.center == created.name]
    check(bool(ours), "the test center is a candidate")
    check(
        ours[0].match == directory_pb2.CANDIDATE_MATCH_CONTAINS and ours[0].distance_m == 0,
        "it CONTAINS the point",
    )
    if answer.candidates[0].center == created.name:
        check(
            answer.service_boundary == created.service_area,
            "service_boundary is candidates[0]'s service area",
        )


@case(
    "TC_DIR_011_SRV",
    title="A SUSPENDED center is never a candidate nor the default route",
    requirements=["DIR-009", "DIR-012"],
    profile=PROFILE,
    kind="positive",
)
async def resolve_suspended(ctx: CaseContext) -> None:
    lat, lon = _spot()
    created = await _create(ctx, _entry(ctx, lat, lon, 2000.0))
    stub = _stub(ctx)
    suspended = directory_pb2.CenterEntry()
    suspended.CopyFrom(created)
    suspended.state = directory_pb2.CENTER_STATE_SUSPENDED
    await expect_ok(
        stub.UpdateCenter(
            directory_pb2.UpdateCenterRequest(
                center=suspended,
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
                request_id=ctx.request_id(),
            )
        )
    )
    try:
        response = await stub.ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=_location(lat, lon, 10.0), service="sos")
        )
    except grpc.aio.AioRpcError as error:
        check(
            error.code() == grpc.StatusCode.NOT_FOUND,
            f"expected an answer or NOT_FOUND, got {error.code().name}",
        )
        return
    answer = directory_pb2.ResolveCenterAnswer.FromString(response.answer)
    check(all(c.center != created.name for c in answer.candidates), "the suspended center is not a candidate")


@case(
    "TC_DIR_012_SRV",
    title="ResolveCenter for an unknown service fails INVALID_FIELD on service",
    requirements=["DIR-009", "LOC-001"],
    profile=PROFILE,
    kind="negative",
)
async def resolve_unknown_service(ctx: CaseContext) -> None:
    await expect_error(
        _stub(ctx).ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=_location(37.57, 126.98, 10), service="pizza")
        ),
        code=INVALID,
        reason="INVALID_FIELD",
        field="service",
    )


@case(
    "TC_DIR_013_SRV",
    title="CreateCenter by an APP_USER and ResolveCenter by a GUARDIAN are refused ROLE_NOT_PERMITTED",
    requirements=["DIR-001", "SEC-005"],
    profile=PROFILE,
    kind="negative",
)
async def role_denials(ctx: CaseContext) -> None:
    entry = _entry(ctx, *_spot())
    await expect_error(
        _stub(ctx, "APP_USER").CreateCenter(
            directory_pb2.CreateCenterRequest(center=entry, request_id=ctx.request_id())
        ),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
    )
    await expect_error(
        _stub(ctx, "GUARDIAN").ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=_location(37.57, 126.98, 10), service="sos")
        ),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="ROLE_NOT_PERMITTED",
    )


@case(
    "TC_DIR_014_SRV",
    title="ListCenters with a page token of another query fails PAGE_TOKEN_INVALID",
    requirements=["DIR-008", "GEN-021"],
    profile=PROFILE,
    kind="negative",
)
async def list_bad_token(ctx: CaseContext) -> None:
    await expect_error(
        _stub(ctx).ListCenters(directory_pb2.ListCentersRequest(page_token="not-a-token-of-this-server")),
        code=INVALID,
        reason="PAGE_TOKEN_INVALID",
        details_required=False,
    )


def _offset(lat: float, lon: float, north_m: float) -> tuple[float, float]:
    return lat + north_m / 111_000.0, lon


@case(
    "TC_DIR_015_SRV",
    title=(
        "A candidate within the uncertainty carries the entry's endpoints, pins and agencies"
        " and its true distance"
    ),
    requirements=["DIR-010", "DIR-011"],
    profile=PROFILE,
    kind="positive",
)
async def resolve_within_uncertainty(ctx: CaseContext) -> None:
    lat, lon = _spot()
    created = await _create(ctx, _entry(ctx, lat, lon, 500.0))
    # 1000 m north of the circle's centre: 500 m outside its edge; an uncertainty of 800 m reaches it.
    here = _offset(lat, lon, 1000.0)
    response = await expect_ok(
        _stub(ctx).ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=_location(*here, 800.0), service="sos")
        )
    )
    answer = directory_pb2.ResolveCenterAnswer.FromString(response.answer)
    ours = [c for c in answer.candidates if c.center == created.name]
    check(bool(ours), "the test center is a candidate within the uncertainty")
    candidate = ours[0]
    check(candidate.match == directory_pb2.CANDIDATE_MATCH_WITHIN_UNCERTAINTY, "match is WITHIN_UNCERTAINTY")
    check(abs(candidate.distance_m - 500.0) <= 10.0, f"distance_m {candidate.distance_m} is 500 m ± 10 m")
    check(list(candidate.endpoints) == list(created.endpoints), "the candidate carries the entry's endpoints")
    check(
        list(candidate.certificates) == list(created.certificates), "the candidate carries the entry's pins"
    )
    check(
        {a.agency for a in candidate.agencies} == {a.agency for a in created.agencies},
        "the candidate carries the agencies serving the point",
    )


@case(
    "TC_DIR_016_SRV",
    title="Outside every area ResolveCenter fails OUTSIDE_SERVICE_AREA with default_center and distance_m",
    requirements=["DIR-012"],
    profile=PROFILE,
    kind="negative",
)
async def resolve_outside(ctx: CaseContext) -> None:
    lat, lon = _spot()
    created = await _create(ctx, _entry(ctx, lat, lon, 500.0))
    here = _offset(lat, lon, 3000.0)  # 2500 m beyond the test circle, uncertainty 20 m
    error = await expect_error(
        _stub(ctx).ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=_location(*here, 20.0), service="sos")
        ),
        code=grpc.StatusCode.NOT_FOUND,
        reason="OUTSIDE_SERVICE_AREA",
    )
    default = error.metadata.get("default_center", "")
    distance = error.metadata.get("distance_m", "")
    check(default.startswith("centers/"), "ErrorInfo metadata names default_center")
    check(distance.isdigit(), "distance_m is whole metres as a decimal string")
    check(int(distance) <= 2500 + 25, "the default route is at most as far as the nearest known test center")
    if default == created.name:
        check(abs(int(distance) - 2500) <= 25, f"distance_m {distance} is 2500 m ± 1 %")
