"""ChildSafetyService (child_safety.proto, spec §14.3): the thin registry servicer, the plugin that
starts the whole child-safety area (registry, tag events, guardians, scheduler) and its demo seed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import grpc.aio
from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc, guardian_pb2_grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from ansim_sdk.validation import violations_of
from reference_server.context import ServerContext
from reference_server.domain.child_safety.area import ChildSafetyArea, build
from reference_server.domain.child_safety.common import check_request
from reference_server.security.caller import current_caller
from reference_server.store.idempotency import idempotent

SERVICE = "ansim.v1.ChildSafetyService"
R = TypeVar("R", cs.Ward, cs.Tag, cs.Reader, cs.Zone)


class ChildSafetyServicer(child_safety_pb2_grpc.ChildSafetyServiceServicer):
    def __init__(self, area: ChildSafetyArea) -> None:
        self.area = area
        self.store = area.ctx.store
        self.registry = area.registry

    # --- generic verbs ------------------------------------------------------------------------------

    async def _create(self, method: str, collection: str, request: Any, resource: R, resource_id: str) -> R:
        check_request(request)
        return await idempotent(
            self.store,
            current_caller().key,
            f"/{SERVICE}/{method}",
            request.request_id,
            request,
            type(resource),
            lambda tx: self.registry.create(tx, collection, request.parent, resource_id, resource),
        )

    async def _update(self, method: str, collection: str, request: Any, resource: R) -> R:
        field = {"wards": "ward", "tags": "tag", "readers": "reader", "zones": "zone"}[collection]
        # The resource is checked after the merge (a partial resource is fine); the rest now.
        outside = [
            v
            for v in violations_of(request)
            if v.field and v.field != field and not v.field.startswith(field + ".")
        ]
        return await idempotent(
            self.store,
            current_caller().key,
            f"/{SERVICE}/{method}",
            request.request_id,
            request,
            type(resource),
            lambda tx: self.registry.update(tx, collection, resource, request.update_mask, outside),
        )

    async def _delete(self, method: str, collection: str, request: Any) -> empty_pb2.Empty:
        check_request(request)

        async def action(tx: Any) -> empty_pb2.Empty:
            await self.registry.delete(tx, collection, request.name)
            return empty_pb2.Empty()

        return await idempotent(
            self.store,
            current_caller().key,
            f"/{SERVICE}/{method}",
            request.request_id,
            request,
            empty_pb2.Empty,
            action,
        )

    async def _get(self, request: Any, cls: type[R]) -> R:
        check_request(request)
        return await self.registry.get(self.store, current_caller(), request.name, cls)

    async def _list(
        self, request: Message, collection: str, cls: type[R], keep: Any = None
    ) -> tuple[list[R], str]:
        check_request(request)
        return await self.registry.list_page(self.store, current_caller(), collection, cls, request, keep)

    # --- wards --------------------------------------------------------------------------------------

    async def CreateWard(self, request: cs.CreateWardRequest, context: object) -> cs.Ward:
        return await self._create("CreateWard", "wards", request, request.ward, request.ward_id)

    async def GetWard(self, request: cs.GetWardRequest, context: object) -> cs.Ward:
        return await self._get(request, cs.Ward)

    async def ListWards(self, request: cs.ListWardsRequest, context: object) -> cs.ListWardsResponse:
        school = request.school_zone
        items, token = await self._list(
            request, "wards", cs.Ward, lambda w: not school or w.school_zone == school
        )
        return cs.ListWardsResponse(wards=items, next_page_token=token)

    async def UpdateWard(self, request: cs.UpdateWardRequest, context: object) -> cs.Ward:
        return await self._update("UpdateWard", "wards", request, request.ward)

    async def DeleteWard(self, request: cs.DeleteWardRequest, context: object) -> empty_pb2.Empty:
        return await self._delete("DeleteWard", "wards", request)

    # --- tags ---------------------------------------------------------------------------------------

    async def CreateTag(self, request: cs.CreateTagRequest, context: object) -> cs.Tag:
        return await self._create("CreateTag", "tags", request, request.tag, request.tag_id)

    async def GetTag(self, request: cs.GetTagRequest, context: object) -> cs.Tag:
        return await self._get(request, cs.Tag)

    async def ListTags(self, request: cs.ListTagsRequest, context: object) -> cs.ListTagsResponse:
        ward = request.ward
        items, token = await self._list(request, "tags", cs.Tag, lambda t: not ward or t.ward == ward)
        return cs.ListTagsResponse(tags=items, next_page_token=token)

    async def UpdateTag(self, request: cs.UpdateTagRequest, context: object) -> cs.Tag:
        return await self._update("UpdateTag", "tags", request, request.tag)

    async def DeleteTag(self, request: cs.DeleteTagRequest, context: object) -> empty_pb2.Empty:
        return await self._delete("DeleteTag", "tags", request)

    # --- readers ------------------------------------------------------------------------------------

    async def CreateReader(self, request: cs.CreateReaderRequest, context: object) -> cs.Reader:
        return await self._create("CreateReader", "readers", request, request.reader, request.reader_id)

    async def GetReader(self, request: cs.GetReaderRequest, context: object) -> cs.Reader:
        return await self._get(request, cs.Reader)

    async def ListReaders(self, request: cs.ListReadersRequest, context: object) -> cs.ListReadersResponse:
        zone, gateway = request.zone, request.gateway

        def keep(r: cs.Reader) -> bool:
            return (not zone or r.zone == zone) and (not gateway or r.gateway == gateway)

        items, token = await self._list(request, "readers", cs.Reader, keep)
        return cs.ListReadersResponse(readers=items, next_page_token=token)

    async def UpdateReader(self, request: cs.UpdateReaderRequest, context: object) -> cs.Reader:
        return await self._update("UpdateReader", "readers", request, request.reader)

    async def DeleteReader(self, request: cs.DeleteReaderRequest, context: object) -> empty_pb2.Empty:
        return await self._delete("DeleteReader", "readers", request)

    # --- zones --------------------------------------------------------------------------------------

    async def CreateZone(self, request: cs.CreateZoneRequest, context: object) -> cs.Zone:
        return await self._create("CreateZone", "zones", request, request.zone, request.zone_id)

    async def GetZone(self, request: cs.GetZoneRequest, context: object) -> cs.Zone:
        return await self._get(request, cs.Zone)

    async def ListZones(self, request: cs.ListZonesRequest, context: object) -> cs.ListZonesResponse:
        kind = request.kind
        items, token = await self._list(request, "zones", cs.Zone, lambda z: not kind or z.kind == kind)
        return cs.ListZonesResponse(zones=items, next_page_token=token)

    async def UpdateZone(self, request: cs.UpdateZoneRequest, context: object) -> cs.Zone:
        return await self._update("UpdateZone", "zones", request, request.zone)

    async def DeleteZone(self, request: cs.DeleteZoneRequest, context: object) -> empty_pb2.Empty:
        return await self._delete("DeleteZone", "zones", request)


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    """The child-safety profile: the registry, the reader-gateway ingest and the guardian service,
    sharing one area, and the scheduler of the time-based rules."""
    from ansim.v1 import child_safety_pb2_grpc as csg

    from reference_server.services.guardian import GuardianServicer
    from reference_server.services.raw_streams import add_servicer
    from reference_server.services.tag_events import TagEventServicer

    area = build(ctx)
    child_safety_pb2_grpc.add_ChildSafetyServiceServicer_to_server(ChildSafetyServicer(area), server)
    csg.add_TagEventServiceServicer_to_server(TagEventServicer(area), server)
    add_servicer(
        guardian_pb2_grpc.add_GuardianServiceServicer_to_server,
        GuardianServicer(area),
        server,
        ["StreamNotifications"],
    )
    area.scheduler.start()
    ctx.lifecycle.on_stop("child-safety scheduler", area.scheduler.stop)
    return [SERVICE, "ansim.v1.TagEventService", "ansim.v1.GuardianService"]


async def seed(ctx: ServerContext) -> None:
    """Demo data around a 종로구 elementary school (see ``domain.child_safety.demo``)."""
    from reference_server.domain.child_safety.demo import seed_demo

    await seed_demo(ctx, build(ctx))
