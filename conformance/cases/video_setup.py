"""What the camera and video cases share: a TEST emergency at the declared camera location with its
112 dispatch (acknowledged when asked), built through the public API only, and spec §12.2's
haversine distance.

Flow (spec §10, §13): an APP_USER raises an APP_SOS without countdown (RAISED at once); the center
dispatches 112 (DSP-001, within 2 s); the police officer finds the dispatch with ListDispatches and
acknowledges it. The emergency is cancelled (FALSE_ALARM) when the case ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
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

from conformance import CaseContext, expect_ok
from conformance.expect import fail

EARTH_RADIUS_M = 6_371_008.8
GRANT_RADIUS_M = 1000.0
DISPATCH_WAIT_S = 5.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance of spec §12.2 (R = 6,371,008.8 m)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def uid(ctx: CaseContext, kind: str) -> str:
    """A resource id that also names the case it belongs to (readable in the center's logs)."""
    block, number = ctx.case_id.split("_")[1:3]
    return ctx.resource_id(f"{kind}-{block.lower()}{number}")


def camera_location(ctx: CaseContext) -> tuple[float, float]:
    spot = ctx.fixtures.camera_location
    if spot is None:
        ctx.skip("the declaration has no fixtures.camera_location")
    assert spot is not None
    return spot.latitude, spot.longitude


def agency(ctx: CaseContext, kind: str = "POLICE_112") -> str:
    found = ctx.fixtures.agencies.get(kind)  # type: ignore[call-overload]
    if not found:
        ctx.skip(f"the declaration has no fixtures.agencies.{kind}")
    return str(found)


@dataclass
class Incident:
    emergency: str
    dispatch: str
    location: tuple[float, float]
    #: The reporter's token: a reporter of its own per case, because a center may merge a second
    #: raise by the same reporter into her active emergency.
    reporter_token: str


def now_timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


async def cancel(ctx: CaseContext, found: Incident) -> None:
    app: Any = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "APP_USER", token=found.reporter_token)
    await expect_ok(
        app.CancelEmergency(
            emergency_pb2.CancelEmergencyRequest(
                name=found.emergency,
                request_id=ctx.request_id(),
                reason=emergency_pb2.EMERGENCY_CANCEL_REASON_SAFE_NOW,
            )
        ),
        "cancelling the case's TEST emergency (CancelEmergency by its reporter)",
    )


async def incident(ctx: CaseContext, *, acknowledge: bool = True) -> Incident:
    """A RAISED TEST emergency at fixtures.camera_location with the police dispatch (acknowledged)."""
    lat, lon = camera_location(ctx)
    police = agency(ctx)
    reporter = ctx.tokens.mint("APP_USER", claims={"sub": f"users/{uid(ctx, 'reporter')}"})
    app: Any = ctx.stub(emergency_pb2_grpc.EmergencyServiceStub, "APP_USER", token=reporter)
    location = common_pb2.Location(
        latitude=lat,
        longitude=lon,
        radius_m=10,
        method=common_pb2.POSITIONING_METHOD_GNSS,
        fix_time=now_timestamp(),
    )
    raised = await expect_ok(
        app.RaiseEmergency(
            emergency_pb2.RaiseEmergencyRequest(
                parent=ctx.center(),
                request_id=ctx.request_id(),
                mode=ctx.mode,
                kind=emergency_pb2.EMERGENCY_KIND_APP_SOS,
                location=location,
            )
        ),
        "setup: raising a TEST APP_SOS emergency at fixtures.camera_location",
    )

    created = Incident(raised.name, "", (lat, lon), reporter)

    async def end() -> None:
        with contextlib.suppress(Exception):  # already ended by the case
            await cancel(ctx, created)

    ctx.on_cleanup(end)
    dispatches: Any = ctx.stub(dispatch_pb2_grpc.DispatchServiceStub, "POLICE_OFFICER")
    deadline = asyncio.get_running_loop().time() + DISPATCH_WAIT_S
    found: dispatch_pb2.Dispatch | None = None
    while found is None:
        listed = await expect_ok(
            dispatches.ListDispatches(
                dispatch_pb2.ListDispatchesRequest(parent=ctx.center(), agency=police, emergency=raised.name)
            ),
            "setup: ListDispatches for the case's emergency",
        )
        found = next(iter(listed.dispatches), None)
        if found is None:
            if asyncio.get_running_loop().time() > deadline:
                fail(f"setup: no dispatch to {police} appeared within {DISPATCH_WAIT_S} s (DSP-001)")
            await asyncio.sleep(0.2)
    if acknowledge:
        await expect_ok(
            dispatches.AcknowledgeDispatch(
                dispatch_pb2.AcknowledgeDispatchRequest(
                    name=found.name,
                    request_id=ctx.request_id(),
                    unit_id="conformance-unit",
                    eta_duration=duration_pb2.Duration(seconds=300),
                )
            ),
            "setup: acknowledging the police dispatch",
        )
    created.dispatch = found.name
    return created


def grant_request(
    ctx: CaseContext,
    emergency: str,
    cameras: list[str] | None = None,
    *,
    agency_name: str | None = None,
    seconds: int = 600,
    nearby: camera_pb2.NearbySelection | None = None,
) -> camera_pb2.CreateVideoGrantRequest:
    request = camera_pb2.CreateVideoGrantRequest(
        parent=ctx.center(),
        request_id=ctx.request_id(),
        video_grant=camera_pb2.VideoGrant(
            emergency=emergency,
            agency=agency_name or agency(ctx),
            mode=ctx.mode,
            purpose=f"conformance {ctx.run.run_id}: 112 출동 중 현장 확인",
            cameras=cameras or [],
            requested_duration=duration_pb2.Duration(seconds=seconds),
        ),
    )
    if nearby is not None:
        request.nearby.CopyFrom(nearby)
    return request


async def near_cameras(
    ctx: CaseContext, emergency: str, count: int = 2, radius_m: float = 500
) -> list[camera_pb2.Camera]:
    """Cameras near the emergency, as the police officer's SearchNearbyCameras finds them."""
    cameras: Any = ctx.stub(camera_pb2_grpc.CameraServiceStub, "POLICE_OFFICER")
    found = await expect_ok(
        cameras.SearchNearbyCameras(
            camera_pb2.SearchNearbyCamerasRequest(
                parent=ctx.center(), emergency=emergency, radius_m=radius_m, limit=count
            )
        ),
        "setup: SearchNearbyCameras around the emergency",
    )
    if not found.results:
        fail(f"setup: no camera within {radius_m} m of fixtures.camera_location (declared to have some)")
    return [r.camera for r in found.results]


def status_of(error: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return error.code()
