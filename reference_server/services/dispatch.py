"""DispatchService (spec §13): thin servicer, proto in and out; the logic is in domain/dispatch."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
from ansim.v1 import dispatch_pb2, dispatch_pb2_grpc

from ansim_sdk.validation import validate
from reference_server.domain.emergencies.service import EmergencyDomain
from reference_server.security.caller import current_caller
from reference_server.services.raw_streams import add_servicer
from reference_server.store.idempotency import idempotent

SERVICE = "ansim.v1.DispatchService"
D = dispatch_pb2
Context = grpc.aio.ServicerContext[Any, Any]


def _method(rpc: str) -> str:
    return f"/{SERVICE}/{rpc}"


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(self, domain: EmergencyDomain) -> None:
        self.center = domain.center
        self.dispatch = domain.dispatch
        self.store = domain.store

    async def SubscribeDispatches(  # type: ignore[override]  # registered to write bytes as they are
        self, request: D.SubscribeDispatchesRequest, context: Context
    ) -> AsyncIterator[bytes]:
        """Each DispatchEvent already serialised (:mod:`reference_server.services.raw_streams`)."""
        validate(request)
        caller = current_caller()
        events = self.dispatch.stream(request, caller, self.center)
        await self.dispatch.audit_subscription(caller, request)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                yield event

    async def AcknowledgeDispatch(
        self, request: D.AcknowledgeDispatchRequest, context: Context
    ) -> D.Dispatch:
        validate(request)
        caller = current_caller()
        return await idempotent(
            self.store,
            caller.key,
            _method("AcknowledgeDispatch"),
            request.request_id,
            request,
            D.Dispatch,
            lambda tx: self.dispatch.acknowledge(tx, request, caller),
        )

    async def UpdateDispatchStatus(
        self, request: D.UpdateDispatchStatusRequest, context: Context
    ) -> D.Dispatch:
        validate(request)
        caller = current_caller()
        return await idempotent(
            self.store,
            caller.key,
            _method("UpdateDispatchStatus"),
            request.request_id,
            request,
            D.Dispatch,
            lambda tx: self.dispatch.update_status(tx, request, caller),
        )

    async def CloseDispatch(self, request: D.CloseDispatchRequest, context: Context) -> D.Dispatch:
        validate(request)
        caller = current_caller()
        return await idempotent(
            self.store,
            caller.key,
            _method("CloseDispatch"),
            request.request_id,
            request,
            D.Dispatch,
            lambda tx: self.dispatch.close(tx, request, caller),
        )

    async def GetDispatch(self, request: D.GetDispatchRequest, context: Context) -> D.Dispatch:
        validate(request)
        return await self.dispatch.get(request.name, current_caller())

    async def ListDispatches(
        self, request: D.ListDispatchesRequest, context: Context
    ) -> D.ListDispatchesResponse:
        validate(request)
        return await self.dispatch.list_dispatches(request, current_caller())


def add_to_server(domain: EmergencyDomain, server: grpc.aio.Server) -> None:
    add_servicer(
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server,
        DispatchServicer(domain),
        server,
        ["SubscribeDispatches"],
    )
