"""`ansim video verify-token` checks a real grant's token offline, as a video gateway does (§12).

The whole chain runs on a real center: an app raises a TEST SOS, the 112 officer acknowledges the
dispatch over mutual TLS and obtains a grant, anyone fetches the published keys without a token,
and the CLI accepts the genuine token and refuses a tampered one or one for another camera.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ansim.v1 import (
    camera_pb2,
    camera_pb2_grpc,
    common_pb2,
    dispatch_pb2,
    dispatch_pb2_grpc,
    emergency_pb2,
    emergency_pb2_grpc,
)
from google.protobuf import duration_pb2, json_format, timestamp_pb2

from tests.support.center import REPO_ROOT, CenterProcess, start_center

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CenterProcess]:
    process = start_center(tmp_path_factory.mktemp("video-cli"))
    yield process
    process.terminate()


def verify(keys: Path, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ansim_sdk", "video", "verify-token", "--keys", str(keys), token]
    return subprocess.run([*command, *extra], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


async def grant_for_new_sos(center: CenterProcess) -> camera_pb2.VideoGrant:
    fix = timestamp_pb2.Timestamp()
    fix.FromDatetime(datetime.now(UTC))
    async with center.channel() as channel:
        emergencies = emergency_pb2_grpc.EmergencyServiceStub(channel)
        emergency = await emergencies.RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent="centers/demo",
                request_id=str(uuid.uuid4()),
                mode=common_pb2.MODE_TEST,
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                location=common_pb2.Location(
                    latitude=37.5729,
                    longitude=126.9794,
                    radius_m=15,
                    method=common_pb2.POSITIONING_METHOD_GNSS,
                    fix_time=fix,
                ),
            ),
            metadata=center.metadata("APP_USER"),
        )
    async with center.mtls_channel("POLICE_OFFICER") as channel:
        officer = center.metadata("POLICE_OFFICER")
        dispatches = dispatch_pb2_grpc.DispatchServiceStub(channel)
        # The center dispatches once it has decided where the SOS is handled (routing comes
        # first), so the dispatch appears shortly after RaiseEmergency returns.
        ours: list[dispatch_pb2.Dispatch] = []
        for _ in range(50):
            listed = await dispatches.ListDispatches(
                dispatch_pb2.ListDispatchesRequest(parent="centers/demo", mode=common_pb2.MODE_TEST),
                metadata=officer,
            )
            ours = [d for d in listed.dispatches if d.emergency == emergency.name]
            if ours:
                break
            await asyncio.sleep(0.2)
        assert ours, "the SOS was dispatched to the demo 112 within 10 s"
        await dispatches.AcknowledgeDispatch(
            dispatch_pb2.AcknowledgeDispatchRequest(
                name=ours[0].name, request_id=str(uuid.uuid4()), unit_id="jongno-patrol-12"
            ),
            metadata=officer,
        )
        return await camera_pb2_grpc.CameraServiceStub(channel).CreateVideoGrant(
            camera_pb2.CreateVideoGrantRequest(
                parent="centers/demo",
                request_id=str(uuid.uuid4()),
                video_grant=camera_pb2.VideoGrant(
                    emergency=emergency.name,
                    agency="agencies/seoul-112",
                    mode=common_pb2.MODE_TEST,
                    purpose="SOS 현장 확인",
                    requested_duration=duration_pb2.Duration(seconds=600),
                ),
                nearby=camera_pb2.NearbySelection(radius_m=300, limit=2),
            ),
            metadata=officer,
        )


async def test_gateway_accepts_genuine_token_and_refuses_tampered_or_misdirected(
    center: CenterProcess, tmp_path: Path
) -> None:
    grant = await grant_for_new_sos(center)
    assert len(grant.streams) >= 1
    async with center.channel() as channel:  # the keys are public: no token (SEC-013)
        keys = await camera_pb2_grpc.CameraServiceStub(channel).GetVideoGatewayKeys(
            camera_pb2.GetVideoGatewayKeysRequest(parent="centers/demo")
        )
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json_format.MessageToJson(keys), encoding="utf-8")
    stream = grant.streams[0]

    ok = verify(keys_file, stream.token, "--camera", stream.camera)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert grant.name in ok.stdout

    head, body, signature = stream.token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    tampered = verify(keys_file, f"{head}.{body}.{flipped}")
    assert tampered.returncode == 1 and "REFUSE" in tampered.stdout

    other = verify(keys_file, stream.token, "--camera", "centers/demo/cameras/not-this-one")
    assert other.returncode == 1 and "camera" in other.stdout
