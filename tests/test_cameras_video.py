"""Video grants of the reference center end to end, with a scripted emergency area.

The emergency area's port is replaced by ``FileEmergencies``, a port that
reads ``<data-dir>/fake-emergencies.json`` on every call, so each test sets the emergency's state,
mode, location and acknowledged agencies directly. What is checked goes over the wire: grant
conditions in order, tokens verifiable with GetVideoGatewayKeys, views per caller, revocation,
automatic revocation, expiry, idempotent retries, and the access record chain.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from ansim.v1 import camera_pb2, camera_pb2_grpc, common_pb2, emergency_pb2, error_pb2
from google.protobuf import duration_pb2

from ansim_sdk.errors import parse_rpc_error
from reference_server.domain.video import access_records, tokens
from tests.support.center import CenterProcess, start_center

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENTER = "centers/demo"
POLICE = "agencies/seoul-112"
SITE = (37.5729, 126.9794)
FAKE_FILE = "fake-emergencies.json"
PLUGIN = "tests.test_cameras_video:install_fake_emergencies"


class FileEmergencies:
    """An EmergencyIntake that reads its emergencies from a JSON file (test scaffolding)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _all(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    async def get(self, name: str) -> emergency_pb2.Emergency | None:
        found = self._all().get(name)
        if found is None:
            return None
        emergency = emergency_pb2.Emergency(name=name, state=found["state"], mode=found["mode"])
        if "lat" in found:
            emergency.last_location.latitude = found["lat"]
            emergency.last_location.longitude = found["lon"]
        for agency in found.get("dispatched", []):
            emergency.dispatched_agencies.add(agency=agency, agency_kind=1)
        return emergency

    async def acknowledged_agencies(self, emergency: str) -> frozenset[str]:
        return frozenset(self._all().get(emergency, {}).get("acked", []))

    async def raise_from_system(self, **_: Any) -> emergency_pb2.Emergency:
        raise NotImplementedError


def install_fake_emergencies(ctx: Any, server: Any) -> Sequence[str]:
    ctx.domain.emergencies = FileEmergencies(ctx.settings.data_dir / FAKE_FILE)
    return []


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    process = start_center(tmp_path_factory.mktemp("video"), plugins=[PLUGIN])
    yield process
    process.terminate()


def set_emergency(center: CenterProcess, name: str, **fields: Any) -> None:
    path = center.data_dir / FAKE_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = {**data.get(name, {}), **fields}
    path.write_text(json.dumps(data))


def new_emergency(center: CenterProcess, **fields: Any) -> str:
    name = f"{CENTER}/emergencies/e-{uuid.uuid4().hex[:10]}"
    defaults: dict[str, Any] = {
        "state": emergency_pb2.EMERGENCY_STATE_DISPATCHED,
        "mode": common_pb2.MODE_TEST,
        "lat": SITE[0],
        "lon": SITE[1],
        "dispatched": [POLICE],
        "acked": [POLICE],
    }
    set_emergency(center, name, **{**defaults, **fields})
    return name


def grant_request(
    emergency: str, cameras: Sequence[str] = (), **nearby: Any
) -> camera_pb2.CreateVideoGrantRequest:
    request = camera_pb2.CreateVideoGrantRequest(
        parent=CENTER,
        request_id=str(uuid.uuid4()),
        video_grant=camera_pb2.VideoGrant(
            emergency=emergency,
            agency=POLICE,
            mode=common_pb2.MODE_TEST,
            purpose="112 출동 중 현장 확인",
            cameras=list(cameras),
            requested_duration=duration_pb2.Duration(seconds=600),
        ),
    )
    if not cameras:
        request.nearby.radius_m = nearby.get("radius_m", 300)
        request.nearby.limit = nearby.get("limit", 3)
    return request


class Calls:
    def __init__(self, center: CenterProcess) -> None:
        self.center = center

    async def call(self, role: str, method: str, request: Any) -> Any:
        officer = role in ("POLICE_OFFICER", "FIRE_OFFICER")
        async with self.center.mtls_channel(role) if officer else self.center.channel() as channel:
            stub = camera_pb2_grpc.CameraServiceStub(channel)
            return await getattr(stub, method)(request, metadata=self.center.metadata(role), timeout=10)

    async def error(self, role: str, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await self.call(role, method, request)
        parsed = parse_rpc_error(failure.value)
        return parsed.code, parsed.reason

    async def records(self) -> list[camera_pb2.AccessRecord]:
        found: list[camera_pb2.AccessRecord] = []
        token = ""
        while True:
            page = await self.call(
                "AUDITOR",
                "ListAccessRecords",
                camera_pb2.ListAccessRecordsRequest(parent=CENTER, page_size=100, page_token=token),
            )
            found.extend(page.access_records)
            token = page.next_page_token
            if not token:
                return found


@pytest.fixture
def calls(center: CenterProcess) -> Calls:
    return Calls(center)


async def nearest_camera(calls: Calls, radius: float = 200) -> camera_pb2.Camera:
    found = await calls.call(
        "CENTER_OPERATOR",
        "SearchNearbyCameras",
        camera_pb2.SearchNearbyCamerasRequest(
            parent=CENTER,
            point=common_pb2.Point(latitude=SITE[0], longitude=SITE[1]),
            radius_m=radius,
            limit=1,
        ),
    )
    camera: camera_pb2.Camera = found.results[0].camera
    return camera


async def test_grant_tokens_verify_offline_and_views_differ(center: CenterProcess, calls: Calls) -> None:
    emergency = new_emergency(center)
    grant = await calls.call("POLICE_OFFICER", "CreateVideoGrant", grant_request(emergency))
    assert grant.state == camera_pb2.VIDEO_GRANT_STATE_ACTIVE and grant.cameras
    assert len(grant.streams) >= len(grant.cameras)
    keys = await calls.call(
        "APP_USER", "GetVideoGatewayKeys", camera_pb2.GetVideoGatewayKeysRequest(parent=CENTER)
    )
    key = {k.key_id: k.public_key for k in keys.keys}
    for stream in grant.streams:
        header = json.loads(tokens.b64url_decode(stream.token.split(".")[0]))
        claims = tokens.verify(stream.token, key[header["kid"]])
        assert set(claims) == set(
            [
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
            ]
        )
        assert claims["grant"] == grant.name and claims["camera"] == stream.camera
        assert claims["mode"] == "TEST" and "/test/" in stream.uri
        assert 0 < int(claims["exp"]) - int(claims["iat"]) <= 300  # type: ignore[call-overload]
    seen_by_operator = await calls.call(
        "CENTER_OPERATOR", "GetVideoGrant", camera_pb2.GetVideoGrantRequest(name=grant.name)
    )
    assert all(not s.uri and not s.token for s in seen_by_operator.streams)
    own = await calls.call(
        "POLICE_OFFICER", "GetVideoGrant", camera_pb2.GetVideoGrantRequest(name=grant.name)
    )
    assert all(s.uri and s.token for s in own.streams)
    code, reason = await calls.error(
        "FIRE_OFFICER", "GetVideoGrant", camera_pb2.GetVideoGrantRequest(name=grant.name)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER")
    code, reason = await calls.error(
        "AUDITOR", "GetVideoGrant", camera_pb2.GetVideoGrantRequest(name=grant.name)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


async def test_conditions_in_order_each_denial_recorded_once(center: CenterProcess, calls: Calls) -> None:
    camera = await nearest_camera(calls)
    far = await calls.call(
        "CENTER_OPERATOR",
        "GetCamera",
        camera_pb2.GetCameraRequest(name=f"{CENTER}/cameras/202630000000800463"),
    )
    cases = [
        (new_emergency(center), {"agency": "agencies/other-112"}, [camera.name], "NOT_OWNER"),
        (f"{CENTER}/emergencies/e-missing", {}, [camera.name], "RESOURCE_NOT_FOUND"),
        (
            new_emergency(center, state=emergency_pb2.EMERGENCY_STATE_RESOLVED),
            {},
            [camera.name],
            "EMERGENCY_NOT_ACTIVE",
        ),
        (new_emergency(center, mode=common_pb2.MODE_EXERCISE), {}, [camera.name], "MODE_MISMATCH"),
        (new_emergency(center, acked=[]), {}, [camera.name], "DISPATCH_NOT_ACKNOWLEDGED"),
        (new_emergency(center), {}, [f"{CENTER}/cameras/nope-1"], "RESOURCE_NOT_FOUND"),
        (new_emergency(center), {}, [camera.name, far.name], "CAMERA_NOT_NEAR_EMERGENCY"),
    ]
    before = len(await calls.records())
    for emergency, override, cameras, reason in cases:
        request = grant_request(emergency, cameras)
        for name, value in override.items():
            setattr(request.video_grant, name, value)
        for _ in range(2):  # the retry gets the same error and no second record [VID-025]
            assert (await calls.error("POLICE_OFFICER", "CreateVideoGrant", request))[1] == reason, reason
    records = (await calls.records())[before:]
    assert [r.outcome for r in records] == [camera_pb2.ACCESS_OUTCOME_DENIED] * len(cases)
    reasons = [error_pb2.ErrorReason.Name(r.denial_reason).removeprefix("ERROR_REASON_") for r in records]
    assert reasons == [c[3] for c in cases]
    assert [r.request_id for r in records] == [r.request_id for r in records if r.request_id]


async def test_revocations_expiry_and_chain(center: CenterProcess, calls: Calls) -> None:
    camera = await nearest_camera(calls)
    emergency = new_emergency(center)
    first = await calls.call("POLICE_OFFICER", "CreateVideoGrant", grant_request(emergency, [camera.name]))
    retry_request = grant_request(emergency, [camera.name])
    second = await calls.call("POLICE_OFFICER", "CreateVideoGrant", retry_request)
    again = await calls.call("POLICE_OFFICER", "CreateVideoGrant", retry_request)
    assert again.name == second.name
    released = await calls.call(
        "POLICE_OFFICER",
        "RevokeVideoGrant",
        camera_pb2.RevokeVideoGrantRequest(
            name=first.name, request_id=str(uuid.uuid4()), note="no longer needed"
        ),
    )
    assert released.revocation_reason == camera_pb2.VIDEO_GRANT_REVOCATION_REASON_RELEASED
    code, reason = await calls.error(
        "CENTER_OPERATOR",
        "RevokeVideoGrant",
        camera_pb2.RevokeVideoGrantRequest(name=first.name, request_id=str(uuid.uuid4()), note="again"),
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "GRANT_NOT_ACTIVE")
    short = grant_request(emergency, [camera.name])
    short.video_grant.requested_duration.seconds = 2
    expiring = await calls.call("POLICE_OFFICER", "CreateVideoGrant", short)
    set_emergency(center, emergency, state=emergency_pb2.EMERGENCY_STATE_CANCELLED)
    await asyncio.sleep(3.5)
    ended = await calls.call(
        "CENTER_OPERATOR", "GetVideoGrant", camera_pb2.GetVideoGrantRequest(name=second.name)
    )
    assert ended.state == camera_pb2.VIDEO_GRANT_STATE_REVOKED
    assert ended.revocation_reason == camera_pb2.VIDEO_GRANT_REVOCATION_REASON_EMERGENCY_ENDED
    expired = await calls.call(
        "CENTER_OPERATOR", "GetVideoGrant", camera_pb2.GetVideoGrantRequest(name=expiring.name)
    )
    assert expired.state in (camera_pb2.VIDEO_GRANT_STATE_EXPIRED, camera_pb2.VIDEO_GRANT_STATE_REVOKED)
    records = await calls.records()
    previous = access_records.GENESIS_HASH
    for number, record in enumerate(records, start=1):
        assert record.sequence == number and record.name == f"{CENTER}/accessRecords/{number}"
        assert record.previous_hash == previous
        previous = record.record_hash
    mine = [r for r in records if r.emergency == emergency]
    outcomes = [camera_pb2.AccessOutcome.Name(r.outcome) for r in mine]
    assert outcomes.count("ACCESS_OUTCOME_GRANTED") == 3
    assert outcomes.count("ACCESS_OUTCOME_REVOKED") >= 2
