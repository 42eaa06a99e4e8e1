"""CameraService (camera.proto, spec §12): the thin servicer, its plugin and its demo seed.

The plugin builds the camera area at start-up: the in-memory index from the store, the video
signing key from the data directory, and a housekeeping task that (every second) expires and
revokes grants and (every ``POLL_INTERVAL_S``) picks up camera imports made by
``ansim cameras import`` while the center runs. It installs ``ctx.domain.cameras``
(``CameraLookup``) and ``ctx.domain.video`` (``VideoAccess``).

The video gateway's origin (scheme, host, port of stream URIs and the tokens' ``aud``) comes from
the environment variable ``ANSIM_VIDEO_GATEWAY_ORIGIN`` (default ``rtsps://vgw.<center>.localhost:8322``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Sequence

import grpc.aio
from ansim.v1 import camera_pb2, camera_pb2_grpc
from google.protobuf import duration_pb2

from ansim_sdk.validation import validate
from reference_server.context import ServerContext
from reference_server.domain.cameras.inventory import POLL_INTERVAL_S, CameraInventory
from reference_server.domain.cameras.queries import CameraQueries
from reference_server.domain.paging import PageTokens
from reference_server.domain.retention import retention_registry
from reference_server.domain.video import tokens
from reference_server.domain.video.grants import VideoGrants
from reference_server.domain.video.purge import purge_access_records, purge_grants
from reference_server.domain.video.record_queries import AccessRecordQueries
from reference_server.security.caller import current_caller

log = logging.getLogger("ansim.cameras")
SERVICE = "ansim.v1.CameraService"
GATEWAY_ENV = "ANSIM_VIDEO_GATEWAY_ORIGIN"
SWEEP_INTERVAL_S = 1.0


class CameraServicer(camera_pb2_grpc.CameraServiceServicer):
    def __init__(
        self, ctx: ServerContext, cameras: CameraQueries, grants: VideoGrants, records: AccessRecordQueries
    ) -> None:
        self.ctx = ctx
        self.cameras = cameras
        self.grants = grants
        self.records = records

    async def GetCamera(self, request: camera_pb2.GetCameraRequest, context: object) -> camera_pb2.Camera:
        validate(request)
        return await self.cameras.get(request.name)

    async def ListCameras(
        self, request: camera_pb2.ListCamerasRequest, context: object
    ) -> camera_pb2.ListCamerasResponse:
        validate(request)
        return await self.cameras.list(request)

    async def SearchNearbyCameras(
        self, request: camera_pb2.SearchNearbyCamerasRequest, context: object
    ) -> camera_pb2.SearchNearbyCamerasResponse:
        validate(request)
        return await self.cameras.search(request, current_caller())

    async def CreateVideoGrant(
        self, request: camera_pb2.CreateVideoGrantRequest, context: object
    ) -> camera_pb2.VideoGrant:
        validate(request)
        return await self.grants.create(request, current_caller())

    async def GetVideoGrant(
        self, request: camera_pb2.GetVideoGrantRequest, context: object
    ) -> camera_pb2.VideoGrant:
        validate(request)
        return await self.grants.get(request.name, current_caller())

    async def RevokeVideoGrant(
        self, request: camera_pb2.RevokeVideoGrantRequest, context: object
    ) -> camera_pb2.VideoGrant:
        validate(request)
        return await self.grants.revoke(request, current_caller())

    async def ListAccessRecords(
        self, request: camera_pb2.ListAccessRecordsRequest, context: object
    ) -> camera_pb2.ListAccessRecordsResponse:
        validate(request)
        return await self.records.list(request, current_caller())

    async def GetVideoGatewayKeys(
        self, request: camera_pb2.GetVideoGatewayKeysRequest, context: object
    ) -> camera_pb2.VideoGatewayKeys:
        validate(request)
        from ansim.v1 import error_pb2

        from ansim_sdk.errors import AnsimError

        center = self.grants.center
        if request.parent != center:
            raise AnsimError(
                error_pb2.ERROR_REASON_RESOURCE_NOT_FOUND, f"{request.parent} is not this center"
            )
        key = self.grants.key
        published = camera_pb2.VideoGatewayKey(key_id=key.key_id, public_key=key.public_bytes)
        published.not_before.FromDatetime(key.not_before)
        return camera_pb2.VideoGatewayKeys(
            center=center,
            keys=[published],
            refresh_interval=duration_pb2.Duration(seconds=int(tokens.REFRESH_INTERVAL.total_seconds())),
        )


async def housekeep(ctx: ServerContext, inventory: CameraInventory, grants: VideoGrants) -> None:
    """Expire and revoke grants every second; pick up camera imports every POLL_INTERVAL_S."""
    ticks_per_poll = max(1, round(POLL_INTERVAL_S / SWEEP_INTERVAL_S))
    tick = 0
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        tick += 1
        try:
            await grants.expire_due()
            await grants.revoke_unentitled()
            if tick % ticks_per_poll == 0:
                changed = await inventory.refresh(ctx.store.fetchall)
                if changed:
                    log.info(
                        "camera inventory refreshed", extra={"changed": changed, "searchable": len(inventory)}
                    )
        except RuntimeError:
            return  # the store was closed: the center is stopping
        except Exception:
            log.exception("camera housekeeping failed")


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    settings = ctx.settings
    center = settings.center_name
    inventory = CameraInventory(center)
    with contextlib.closing(sqlite3.connect(ctx.store.path, timeout=30.0)) as conn:
        inventory.load(conn)
    pages = PageTokens.from_data_dir(settings.data_dir)
    origin = os.environ.get(GATEWAY_ENV) or f"rtsps://vgw.{settings.center_id}.localhost:8322"
    grants = VideoGrants(
        center=center,
        store=ctx.store,
        clock=ctx.clock,
        inventory=inventory,
        emergencies=lambda: ctx.domain.emergencies,
        signing_key=tokens.load_or_create(settings.data_dir, settings.center_id, ctx.clock.now()),
        gateway_origin=origin,
    )
    queries = CameraQueries(
        center=center,
        store=ctx.store,
        inventory=inventory,
        pages=pages,
        emergencies=lambda: ctx.domain.emergencies,
    )
    records = AccessRecordQueries(center=center, store=ctx.store, pages=pages)
    camera_pb2_grpc.add_CameraServiceServicer_to_server(CameraServicer(ctx, queries, grants, records), server)
    ctx.domain.cameras = inventory
    ctx.domain.video = grants
    ctx.domain.extra["camera_inventory"] = inventory
    ctx.background.append(
        asyncio.get_running_loop().create_task(
            housekeep(ctx, inventory, grants), name="ansim-camera-housekeeping"
        )
    )
    registry = retention_registry(ctx)
    registry.register_purge("grants", purge_grants)
    registry.register_purge("access_records", purge_access_records)
    log.info("camera inventory loaded", extra={"searchable": len(inventory)})
    return [SERVICE]


async def seed(ctx: ServerContext) -> None:
    """Demo data: the demo inventory around 종로구 (see ``domain.cameras.demo``)."""
    from reference_server.domain.cameras.demo import seed_demo_inventory

    inventory = ctx.domain.extra.get("camera_inventory")
    await seed_demo_inventory(ctx.store, ctx.clock)
    if isinstance(inventory, CameraInventory):
        await inventory.refresh(ctx.store.fetchall)
