"""Cameras follow the reporter's location on repeated presses (EMG-033, EMG-004, EMG-027).

A repeated RaiseEmergency of an active reporter adds its location to her emergency as a new fix;
the cameras selected for the emergency must end up as the nearest to the newest fix, as
SearchNearbyCameras finds them for that point, also after a burst of presses answered concurrently
(their transactions share group commits). Guards any change that moves camera selection off the
answer path (issue 6).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansim.v1 import camera_pb2, camera_pb2_grpc, common_pb2, emergency_pb2, emergency_pb2_grpc
from google.protobuf import timestamp_pb2

from reference_server.security.tokens import TokenIssuer
from tests.support.center import start_center

pytestmark = pytest.mark.asyncio(loop_scope="session")

Metadata = tuple[tuple[str, str], ...]
FIRST = (37.5729, 126.9794)  # the demo's camera location in 종로구
LAST = (37.5790, 126.9870)  # ≈ 950 m north-east of it
PRESSES = 12
FOLLOW_S = 5.0  # EMG-033


def _bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def _press(lat: float, lon: float, at: datetime) -> emergency_pb2.RaiseEmergencyRequest:
    fix_time = timestamp_pb2.Timestamp()
    fix_time.FromDatetime(at)
    return emergency_pb2.RaiseEmergencyRequest(
        parent="centers/demo",
        request_id=str(uuid.uuid4()),
        mode=common_pb2.MODE_TEST,
        kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
        location=common_pb2.Location(latitude=lat, longitude=lon, radius_m=15, fix_time=fix_time),
    )


async def _nearest(
    cameras: camera_pb2_grpc.CameraServiceAsyncStub, md: Metadata, lat: float, lon: float
) -> list[str]:
    found = await cameras.SearchNearbyCameras(
        camera_pb2.SearchNearbyCamerasRequest(
            parent="centers/demo",
            point=common_pb2.Point(latitude=lat, longitude=lon),
            radius_m=1000,
            limit=16,
        ),
        metadata=md,
        timeout=10,
    )
    return [r.camera.name for r in found.results]


async def _until(
    sos: emergency_pb2_grpc.EmergencyServiceAsyncStub,
    md: Metadata,
    name: str,
    done: Callable[[emergency_pb2.Emergency], bool],
) -> emergency_pb2.Emergency:
    deadline = time.monotonic() + FOLLOW_S
    while True:
        seen = await sos.GetEmergency(emergency_pb2.GetEmergencyRequest(name=name), metadata=md, timeout=10)
        if done(seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.05)


async def test_cameras_follow_a_burst_of_repeated_presses(tmp_path: Path) -> None:
    data_dir = tmp_path / "center"
    center = start_center(data_dir)
    try:
        issuer = TokenIssuer.create("ansim-demo", data_dir / "pki" / "token-issuer.key")
        user = _bearer(issuer.issue("users/follow-up", common_pb2.ROLE_APP_USER))
        operator = _bearer(center.token("CENTER_OPERATOR"))
        async with center.channel() as channel:
            sos = emergency_pb2_grpc.EmergencyServiceStub(channel)
            cameras = camera_pb2_grpc.CameraServiceStub(channel)
            at_first, at_last = (
                await _nearest(cameras, operator, *FIRST),
                await _nearest(cameras, operator, *LAST),
            )
            assert at_first and at_last and at_first != at_last

            start = datetime.now(UTC) - timedelta(seconds=60)
            first = await sos.RaiseEmergency(_press(*FIRST, start), metadata=user, timeout=10)
            seen = await _until(sos, operator, first.name, lambda e: list(e.selected_cameras) == at_first)
            assert list(seen.selected_cameras) == at_first, "cameras not selected within 5 s [EMG-033]"

            # Presses on the way to LAST, answered concurrently; the newest fix is LAST's.
            steps = [
                (FIRST[0] + (LAST[0] - FIRST[0]) * i / PRESSES, FIRST[1] + (LAST[1] - FIRST[1]) * i / PRESSES)
                for i in range(1, PRESSES + 1)
            ]
            answers = await asyncio.gather(
                *(
                    sos.RaiseEmergency(
                        _press(lat, lon, start + timedelta(seconds=i + 1)), metadata=user, timeout=10
                    )
                    for i, (lat, lon) in enumerate(steps)
                )
            )
            assert {a.name for a in answers} == {first.name}, (
                "a repeated press made a new emergency [EMG-004]"
            )
            assert not any(a.selected_cameras for a in answers), "the reporter sees cameras [EMG-027]"

            seen = await _until(sos, operator, first.name, lambda e: list(e.selected_cameras) == at_last)
            assert (seen.last_location.latitude, seen.last_location.longitude) == LAST
            assert seen.location_summary.fix_count == PRESSES + 1
            assert list(seen.selected_cameras) == at_last, "cameras did not follow the newest fix [EMG-033]"
    finally:
        center.terminate()
