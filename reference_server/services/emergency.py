"""EmergencyService (spec §10): thin servicer, proto in and out; the logic is in domain/emergencies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc.aio
from ansim.v1 import emergency_pb2, emergency_pb2_grpc, error_pb2

from ansim_sdk.errors import AnsimError, FieldViolation, InvalidArgument
from ansim_sdk.validation import validate, violations_of
from reference_server.config import DEMO_AGENCIES
from reference_server.context import ServerContext
from reference_server.domain.emergencies import retention, timers
from reference_server.domain.emergencies.service import EmergencyDomain
from reference_server.security.caller import current_caller
from reference_server.store.idempotency import idempotent

SERVICE = "ansim.v1.EmergencyService"
E = emergency_pb2
Context = grpc.aio.ServicerContext[Any, Any]


def _method(rpc: str) -> str:
    return f"/{SERVICE}/{rpc}"


class EmergencyServicer(emergency_pb2_grpc.EmergencyServiceServicer):
    def __init__(self, domain: EmergencyDomain) -> None:
        self.domain = domain
        self.store = domain.store

    async def RaiseEmergency(self, request: E.RaiseEmergencyRequest, context: Context) -> E.Emergency:
        validate(request)
        caller = current_caller()
        return await idempotent(
            self.store,
            caller.key,
            _method("RaiseEmergency"),
            request.request_id,
            request,
            E.Emergency,
            lambda tx: self.domain.raise_emergency(tx, request, caller),
        )

    async def GetEmergency(self, request: E.GetEmergencyRequest, context: Context) -> E.Emergency:
        validate(request)
        return await self.domain.get_for(request.name, current_caller())

    async def ListEmergencies(
        self, request: E.ListEmergenciesRequest, context: Context
    ) -> E.ListEmergenciesResponse:
        validate(request)
        return await self.domain.list(request, current_caller())

    async def StreamLocation(
        self, request_iterator: AsyncIterator[E.StreamLocationRequest], context: Context
    ) -> AsyncIterator[E.LocationAck]:
        """One ack per fix, in order, after it is stored [EMG-020, EMG-021, EMG-022]."""
        caller = current_caller()
        first_name = ""
        async for request in request_iterator:
            problems = violations_of(request)
            if not first_name:
                bad_name = [v for v in problems if v.field == "name"]
                if bad_name:
                    raise InvalidArgument(bad_name)
                first_name = request.name
            elif request.name != first_name:
                raise InvalidArgument(
                    [
                        FieldViolation(
                            "name", "every request of a call must name the emergency of the first", "EMG-022"
                        )
                    ]
                )
            if request.sequence == 0:
                raise InvalidArgument([FieldViolation("sequence", "sequence must be 1 or more", "EMG-020")])
            rejected = [v for v in problems if v.field not in ("name", "sequence")]
            if rejected:
                yield E.LocationAck(
                    sequence=request.sequence,
                    status=E.LOCATION_ACK_STATUS_REJECTED,
                    error=InvalidArgument(rejected).to_status_proto(),
                )
                continue
            yield await self.domain.accept_fix(request.name, request.sequence, request.location, caller)

    async def WatchEmergency(
        self, request: E.WatchEmergencyRequest, context: Context
    ) -> AsyncIterator[E.EmergencyEvent]:
        validate(request)
        events = self.domain.watch(request.name, request.resume_cursor, current_caller())
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                yield event

    async def CancelEmergency(self, request: E.CancelEmergencyRequest, context: Context) -> E.Emergency:
        validate(request)
        caller = current_caller()
        # The code is never stored: the idempotency hash covers the request, not the code itself.
        return await idempotent(
            self.store,
            caller.key,
            _method("CancelEmergency"),
            request.request_id,
            request,
            E.Emergency,
            lambda tx: self.domain.cancel(tx, request, caller),
        )

    async def UpdateEmergencyState(
        self, request: E.UpdateEmergencyStateRequest, context: Context
    ) -> E.Emergency:
        validate(request)  # the note rule is message-level; validate names the field it reads [ERR-003]
        caller = current_caller()
        return await idempotent(
            self.store,
            caller.key,
            _method("UpdateEmergencyState"),
            request.request_id,
            request,
            E.Emergency,
            lambda tx: self.domain.update_state(tx, request, caller),
        )


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    """EmergencyService and DispatchService share one domain (and one timer task)."""
    from reference_server.services import dispatch

    domain = EmergencyDomain(ctx)
    ctx.domain.emergencies = domain
    ctx.domain.forwarded = domain.federated
    ctx.domain.extra["sos"] = domain
    emergency_pb2_grpc.add_EmergencyServiceServicer_to_server(EmergencyServicer(domain), server)
    dispatch.add_to_server(domain, server)
    ctx.background.append(asyncio.get_running_loop().create_task(timers.run(domain), name="ansim-sos-timers"))
    ctx.lifecycle.on_stop("emergency routing", domain.federated.drain, "drain")
    retention.register(ctx)  # fixes, and the emergencies themselves, after their periods [PRV-010]
    return [SERVICE, dispatch.SERVICE]


async def seed(ctx: ServerContext) -> None:
    """The demo center's situation rooms (agencies/seoul-112, agencies/seoul-119)."""
    domain = ctx.domain.extra.get("sos")
    if isinstance(domain, EmergencyDomain):
        domain.agencies.use_if_empty(DEMO_AGENCIES)


__all__ = ["AnsimError", "EmergencyServicer", "error_pb2", "register", "seed"]
