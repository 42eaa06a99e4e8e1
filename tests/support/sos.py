"""The SOS-to-video path on a running demo center, for tests that need real grants."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from ansim.v1 import (
    camera_pb2,
    camera_pb2_grpc,
    common_pb2,
    dispatch_pb2,
    dispatch_pb2_grpc,
    emergency_pb2,
    emergency_pb2_grpc,
)
from google.protobuf import duration_pb2, timestamp_pb2

from tests.support.center import CenterProcess


async def grant_for_new_sos(center: CenterProcess) -> camera_pb2.VideoGrant:
    """A TEST SOS raised by the demo app user, dispatched to and acknowledged by the demo 112 over
    mutual TLS, and a 10-minute grant of two nearby cameras for it: the real path, no stand-ins."""
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
            grant_request(emergency.name), metadata=officer
        )


def grant_request(emergency: str, agency: str = "agencies/seoul-112") -> camera_pb2.CreateVideoGrantRequest:
    """A TEST grant request for two cameras within 300 m of the emergency, for ten minutes."""
    return camera_pb2.CreateVideoGrantRequest(
        parent="centers/demo",
        request_id=str(uuid.uuid4()),
        video_grant=camera_pb2.VideoGrant(
            emergency=emergency,
            agency=agency,
            mode=common_pb2.MODE_TEST,
            purpose="SOS 현장 확인",
            requested_duration=duration_pb2.Duration(seconds=600),
        ),
        nearby=camera_pb2.NearbySelection(radius_m=300, limit=2),
    )
