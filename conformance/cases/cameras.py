"""CameraService inventory cases (spec §12.2, §12.5): GetCamera, ListCameras, SearchNearbyCameras.

They read the target's own inventory around ``fixtures.camera_location`` and never assume which
cameras it holds; distances are recomputed with the haversine formula of §12.2.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from ansim.v1 import camera_pb2, camera_pb2_grpc, common_pb2

from ansim_sdk.validation import violations_of
from conformance import CaseContext, case, check, expect_error, expect_ok
from conformance.cases.video_setup import camera_location, cancel, haversine_m, incident, uid

PROFILE = "center-core"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
#: Roles the table of §12.5 denies the inventory.
INVENTORY_DENIED = ("APP_USER", "GUARDIAN", "READER_GATEWAY", "AUDITOR", "PEER_CENTER", "DIRECTORY_ADMIN")


def _stub(ctx: CaseContext, role: str = "CENTER_OPERATOR") -> Any:
    return ctx.stub(camera_pb2_grpc.CameraServiceStub, role)


def _search(
    ctx: CaseContext, radius_m: float = 1000, limit: int = 0, purposes: list[int] | None = None
) -> camera_pb2.SearchNearbyCamerasRequest:
    lat, lon = camera_location(ctx)
    return camera_pb2.SearchNearbyCamerasRequest(
        parent=ctx.center(),
        point=common_pb2.Point(latitude=lat, longitude=lon),
        radius_m=radius_m,
        limit=limit,
        purposes=purposes or [],  # type: ignore[arg-type]
    )


def expected_id(camera: camera_pb2.Camera) -> str:
    return re.sub(r"[^a-z0-9-]", "-", camera.management_number.lower())


@case(
    "TC_CAM_001_SRV",
    title="SearchNearbyCameras returns cameras within the radius, nearest first, with haversine distances",
    requirements=["CAM-012", "CAM-013", "CAM-014", "CAM-006", "CAM-008"],
    profile=PROFILE,
    kind="positive",
)
async def search_nearby_ordered(ctx: CaseContext) -> None:
    lat, lon = camera_location(ctx)
    found = await expect_ok(
        _stub(ctx).SearchNearbyCameras(_search(ctx, 1000)),
        "SearchNearbyCameras around fixtures.camera_location",
    )
    check(len(found.results) > 0, "no camera within 1000 m of fixtures.camera_location")
    check(len(found.results) <= 20, f"limit 0 means 20, got {len(found.results)} results [CAM-013]")
    keys = []
    for result in found.results:
        camera = result.camera
        check(camera.HasField("location"), f"{camera.name} has no location but was found [CAM-006]")
        check(
            camera.data_update_kind != camera_pb2.DATASET_UPDATE_KIND_DELETE,
            f"{camera.name} is marked DELETE [CAM-008]",
        )
        actual = haversine_m(lat, lon, camera.location.latitude, camera.location.longitude)
        check(
            abs(actual - result.distance_m) <= 0.5,
            f"{camera.name}: distance_m {result.distance_m} but haversine gives {actual:.2f} [CAM-014]",
        )
        check(
            result.distance_m <= 1000,
            f"{camera.name} at {result.distance_m} m is outside the radius [CAM-012]",
        )
        keys.append((result.distance_m, camera.name.encode()))
    check(keys == sorted(keys), "results are not ordered by distance, then name [CAM-013]")


@case(
    "TC_CAM_002_SRV",
    title="SearchNearbyCameras honours limit and purposes; a smaller radius returns just the nearer cameras",
    requirements=["CAM-012", "CAM-013"],
    profile=PROFILE,
    kind="positive",
)
async def search_limit_purposes_radius(ctx: CaseContext) -> None:
    stub = _stub(ctx)
    wide = await expect_ok(
        stub.SearchNearbyCameras(_search(ctx, 2000, 100)), "SearchNearbyCameras, 2000 m, limit 100"
    )
    check(len(wide.results) > 0, "no camera within 2000 m of fixtures.camera_location")
    three = await expect_ok(stub.SearchNearbyCameras(_search(ctx, 2000, 3)), "SearchNearbyCameras, limit 3")
    check(
        [r.camera.name for r in three.results] == [r.camera.name for r in wide.results[:3]],
        "limit 3 does not return the three nearest cameras [CAM-013]",
    )
    if len(wide.results) < 100:  # the wide search saw every camera within 2000 m
        cut = wide.results[len(wide.results) // 2].distance_m
        inner = await expect_ok(
            stub.SearchNearbyCameras(_search(ctx, cut, 100)), f"SearchNearbyCameras, {cut} m"
        )
        expected = [r.camera.name for r in wide.results if r.distance_m <= cut]
        check(
            [r.camera.name for r in inner.results] == expected,
            f"radius {cut} m does not return exactly the cameras within it [CAM-012]",
        )
    purpose = wide.results[0].camera.purpose
    only = await expect_ok(
        stub.SearchNearbyCameras(_search(ctx, 2000, 100, [purpose])), "SearchNearbyCameras by purpose"
    )
    check(len(only.results) > 0, "the purpose filter drops the nearest camera of that purpose [CAM-012]")
    check(
        all(r.camera.purpose == purpose for r in only.results),
        "the purpose filter returns other purposes [CAM-012]",
    )


@case(
    "TC_CAM_003_SRV",
    title="GetCamera returns the camera SearchNearbyCameras found, with a conforming name and fields",
    requirements=["CAM-010", "CAM-001", "CAM-003", "CAM-004"],
    profile=PROFILE,
    kind="positive",
)
async def get_camera(ctx: CaseContext) -> None:
    stub = _stub(ctx, "POLICE_OFFICER")
    found = await expect_ok(stub.SearchNearbyCameras(_search(ctx, 1000, 5)), "SearchNearbyCameras")
    check(len(found.results) > 0, "no camera within 1000 m of fixtures.camera_location")
    for result in found.results:
        camera = await expect_ok(
            stub.GetCamera(camera_pb2.GetCameraRequest(name=result.camera.name)),
            f"GetCamera {result.camera.name}",
        )
        check(camera == result.camera, f"GetCamera {camera.name} differs from the search result [CAM-010]")
        problems = [f"{v.field}: {v.description}" for v in violations_of(camera)]
        check(not problems, f"{camera.name} breaks the Camera rules: {'; '.join(problems)}")
        camera_id = camera.name.rsplit("/", 1)[1]
        wanted = expected_id(camera)
        check(
            camera_id == wanted or camera_id.startswith(wanted + "-"),
            f"camera id {camera_id!r} is not derived from {camera.management_number!r} [CAM-001]",
        )
        check(
            camera.purpose != camera_pb2.CAMERA_PURPOSE_UNSPECIFIED, f"{camera.name} has no purpose [CAM-003]"
        )
        check(camera.camera_count >= 1, f"{camera.name} has camera_count 0 [CAM-004]")


@case(
    "TC_CAM_004_SRV",
    title="ListCameras pages through the inventory in name order, every camera once",
    requirements=["CAM-011", "GEN-020"],
    profile=PROFILE,
    kind="positive",
    timeout=30.0,
)
async def list_cameras_pages(ctx: CaseContext) -> None:
    stub = _stub(ctx)
    first = await expect_ok(
        stub.ListCameras(camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=2)),
        "ListCameras page_size 2",
    )
    check(len(first.cameras) <= 2, f"page_size 2 returned {len(first.cameras)} cameras [GEN-020]")
    names: list[bytes] = []
    token = ""
    for _ in range(200):
        page = await expect_ok(
            stub.ListCameras(
                camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=1000, page_token=token)
            ),
            "ListCameras page_size 1000",
        )
        check(len(page.cameras) <= 1000, "a page holds more than page_size cameras [GEN-020]")
        check(
            bool(page.cameras) or not page.next_page_token, "an empty page with a next_page_token [GEN-020]"
        )
        names.extend(c.name.encode() for c in page.cameras)
        token = page.next_page_token
        if not token:
            break
    else:
        ctx.note("stopped after 200 pages of 1000")
    check(names == sorted(names), "cameras are not in ascending byte order of name [CAM-011]")
    check(len(set(names)) == len(names), "a camera appears twice across pages [GEN-020]")
    if first.cameras:
        check(
            names[: len(first.cameras)] == [c.name.encode() for c in first.cameras],
            "page sizes change the order [CAM-011]",
        )


@case(
    "TC_CAM_005_SRV",
    title="ListCameras filters by purpose and by agency_code",
    requirements=["CAM-011", "CAM-002"],
    profile=PROFILE,
    kind="positive",
)
async def list_cameras_filters(ctx: CaseContext) -> None:
    stub = _stub(ctx)
    found = await expect_ok(stub.SearchNearbyCameras(_search(ctx, 1000, 1)), "SearchNearbyCameras")
    check(len(found.results) > 0, "no camera within 1000 m of fixtures.camera_location")
    sample = found.results[0].camera
    by_purpose = await expect_ok(
        stub.ListCameras(
            camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=200, purpose=sample.purpose)
        ),
        "ListCameras by purpose",
    )
    check(
        by_purpose.cameras and all(c.purpose == sample.purpose for c in by_purpose.cameras),
        "the purpose filter is not applied [CAM-011]",
    )
    code = sample.admin_codes.agency_code
    if not code:
        ctx.note("the sample camera has no agency_code; the agency_code filter was not checked")
        return
    check(re.fullmatch(r"[0-9]{7}", code) is not None, f"agency_code {code!r} is not 7 digits [CAM-002]")
    by_agency = await expect_ok(
        stub.ListCameras(camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=200, agency_code=code)),
        "ListCameras by agency_code",
    )
    check(
        by_agency.cameras and all(c.admin_codes.agency_code == code for c in by_agency.cameras),
        "the agency_code filter is not applied [CAM-011]",
    )


@case(
    "TC_CAM_006_SRV",
    title="GetCamera of a well-formed but unknown camera fails NOT_FOUND / RESOURCE_NOT_FOUND",
    requirements=["CAM-010", "GEN-023"],
    profile=PROFILE,
    kind="negative",
)
async def get_unknown_camera(ctx: CaseContext) -> None:
    name = f"{ctx.center()}/cameras/{uid(ctx, 'cam')}"
    error = await expect_error(
        _stub(ctx).GetCamera(camera_pb2.GetCameraRequest(name=name)),
        code=NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
    )
    check(not error.field_violations, "a NOT_FOUND error carries field violations")


@case(
    "TC_CAM_007_SRV",
    title="GetCamera of a malformed name fails INVALID_ARGUMENT / INVALID_FIELD on name",
    requirements=["GEN-023", "ERR-003"],
    profile=PROFILE,
    kind="negative",
)
async def get_malformed_camera(ctx: CaseContext) -> None:
    for bad in (f"{ctx.center()}/cameras/UPPER_case", "cameras/1", f"{ctx.center()}/emergencies/x"):
        await expect_error(
            _stub(ctx).GetCamera(camera_pb2.GetCameraRequest(name=bad)),
            code=INVALID,
            reason="INVALID_FIELD",
            field="name",
            what=f"GetCamera {bad!r}",
        )


@case(
    "TC_CAM_008_SRV",
    title="ListCameras rejects a page_token it did not issue, or one that was altered",
    requirements=["GEN-021"],
    profile=PROFILE,
    kind="negative",
)
async def list_cameras_bad_token(ctx: CaseContext) -> None:
    stub = _stub(ctx)
    await expect_error(
        stub.ListCameras(camera_pb2.ListCamerasRequest(parent=ctx.center(), page_token="bm90LWEtdG9rZW4")),
        code=INVALID,
        reason="PAGE_TOKEN_INVALID",
        what="ListCameras with a made-up page_token",
    )
    first = await expect_ok(
        stub.ListCameras(camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=1)),
        "ListCameras page_size 1",
    )
    if not first.next_page_token:
        ctx.note("the inventory has one camera: no issued token to alter")
        return
    token = first.next_page_token
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    await expect_error(
        stub.ListCameras(camera_pb2.ListCamerasRequest(parent=ctx.center(), page_size=1, page_token=altered)),
        code=INVALID,
        reason="PAGE_TOKEN_INVALID",
        what="ListCameras with an altered page_token",
    )


@case(
    "TC_CAM_009_SRV",
    title="SearchNearbyCameras rejects a radius outside (0, 2000] and a limit outside [0, 100]",
    requirements=["CAM-012", "CAM-013", "ERR-003"],
    profile=PROFILE,
    kind="negative",
)
async def search_bad_radius_limit(ctx: CaseContext) -> None:
    stub = _stub(ctx)
    for radius in (0.0, -5.0, 2000.5):
        await expect_error(
            stub.SearchNearbyCameras(_search(ctx, radius)),
            code=INVALID,
            reason="INVALID_FIELD",
            field="radius_m",
            what=f"radius_m {radius}",
        )
    for limit in (-1, 101):
        await expect_error(
            stub.SearchNearbyCameras(_search(ctx, 500, limit)),
            code=INVALID,
            reason="INVALID_FIELD",
            field="limit",
            what=f"limit {limit}",
        )
    request = _search(ctx, 500)
    request.ClearField("point")
    await expect_error(
        stub.SearchNearbyCameras(request), code=INVALID, reason="INVALID_FIELD", what="no origin"
    )


@case(
    "TC_CAM_010_SRV",
    title="Roles other than operator and officers are refused the inventory with ROLE_NOT_PERMITTED",
    requirements=["CAM-015", "SEC-010"],
    profile=PROFILE,
    kind="negative",
)
async def inventory_roles(ctx: CaseContext) -> None:
    for role in INVENTORY_DENIED:
        stub = _stub(ctx, role)
        calls = {
            "GetCamera": stub.GetCamera(camera_pb2.GetCameraRequest(name=f"{ctx.center()}/cameras/x1")),
            "ListCameras": stub.ListCameras(camera_pb2.ListCamerasRequest(parent=ctx.center())),
            "SearchNearbyCameras": stub.SearchNearbyCameras(_search(ctx, 500)),
        }
        for rpc, call in calls.items():
            await expect_error(call, code=DENIED, reason="ROLE_NOT_PERMITTED", what=f"{rpc} as {role}")


@case(
    "TC_CAM_011_SRV",
    title="SearchNearbyCameras with an emergency origin: unknown, not dispatched to the caller, ended",
    requirements=["CAM-016", "PRV-001"],
    profile=PROFILE,
    kind="negative",
    timeout=30.0,
)
async def search_emergency_origin(ctx: CaseContext) -> None:
    police = _stub(ctx, "POLICE_OFFICER")

    def by_emergency(name: str) -> camera_pb2.SearchNearbyCamerasRequest:
        return camera_pb2.SearchNearbyCamerasRequest(parent=ctx.center(), emergency=name, radius_m=500)

    unknown = f"{ctx.center()}/emergencies/{uid(ctx, 'emg')}"
    await expect_error(
        police.SearchNearbyCameras(by_emergency(unknown)),
        code=NOT_FOUND,
        reason="RESOURCE_NOT_FOUND",
        what="an unknown emergency",
    )
    found = await incident(ctx)
    ok = await expect_ok(
        police.SearchNearbyCameras(by_emergency(found.emergency)), "the dispatched officer's search"
    )
    check(len(ok.results) > 0, "no camera near the emergency at fixtures.camera_location")
    await expect_error(
        _stub(ctx, "FIRE_OFFICER").SearchNearbyCameras(by_emergency(found.emergency)),
        code=DENIED,
        reason="NOT_OWNER",
        what="a fire officer without a dispatch for the emergency",
    )
    await cancel(ctx, found)
    await expect_error(
        police.SearchNearbyCameras(by_emergency(found.emergency)),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="EMERGENCY_NOT_ACTIVE",
        what="a search around a cancelled emergency",
    )
