"""DirectoryService (spec §16): the national directory, served by ``ansim serve --role directory``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc.aio
from ansim.v1 import directory_pb2, directory_pb2_grpc

from ansim_sdk.validation import validate
from reference_server.context import ServerContext
from reference_server.domain.directory.entries import CenterRegistry
from reference_server.domain.directory.keys import KeyRing
from reference_server.domain.directory.resolver import Resolver
from reference_server.security.caller import current_caller
from reference_server.store.idempotency import idempotent

SERVICE = "ansim.v1.DirectoryService"
_PREFIX = f"/{SERVICE}/"

Context = grpc.aio.ServicerContext[Any, Any]


class DirectoryServicer(directory_pb2_grpc.DirectoryServiceServicer):
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.registry = CenterRegistry(ctx.store)
        self.keys = KeyRing(ctx.store)
        self.resolver = Resolver(self.registry, self.keys, ctx.clock)

    async def CreateCenter(
        self, request: directory_pb2.CreateCenterRequest, context: Context
    ) -> directory_pb2.CenterEntry:
        validate(request)
        caller = current_caller()
        return await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "CreateCenter",
            request.request_id,
            request,
            directory_pb2.CenterEntry,
            lambda tx: self.registry.create(tx, request, caller.subject),
        )

    async def GetCenter(
        self, request: directory_pb2.GetCenterRequest, context: Context
    ) -> directory_pb2.CenterEntry:
        validate(request)
        return await self.registry.get(request.name)

    async def ListCenters(
        self, request: directory_pb2.ListCentersRequest, context: Context
    ) -> directory_pb2.ListCentersResponse:
        validate(request)
        page = await self.registry.list(request)
        return directory_pb2.ListCentersResponse(
            centers=page.centers,
            next_page_token=page.next_page_token,
            directory_revision=page.directory_revision,
        )

    async def UpdateCenter(
        self, request: directory_pb2.UpdateCenterRequest, context: Context
    ) -> directory_pb2.CenterEntry:
        validate(request)
        caller = current_caller()
        return await idempotent(
            self.ctx.store,
            caller.key,
            _PREFIX + "UpdateCenter",
            request.request_id,
            request,
            directory_pb2.CenterEntry,
            lambda tx: self.registry.update(tx, request, caller.subject),
        )

    async def ResolveCenter(
        self, request: directory_pb2.ResolveCenterRequest, context: Context
    ) -> directory_pb2.ResolveCenterResponse:
        validate(request)
        return await self.resolver.resolve(request)

    async def GetDirectoryKeys(
        self, request: directory_pb2.GetDirectoryKeysRequest, context: Context
    ) -> directory_pb2.DirectoryKeys:
        validate(request)
        keys = await self.keys.listed(self.ctx.clock.now())
        return directory_pb2.DirectoryKeys(keys=[k.to_proto() for k in keys])


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    """Serve DirectoryService; only in a process started with role ``directory``."""
    if ctx.settings.role != "directory":
        return []
    directory_pb2_grpc.add_DirectoryServiceServicer_to_server(DirectoryServicer(ctx), server)
    return [SERVICE]
