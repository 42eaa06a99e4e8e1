"""SafeTripService (spec §11): thin servicer over :mod:`reference_server.domain.safe_trip`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import grpc.aio
from ansim.v1 import safe_trip_pb2, safe_trip_pb2_grpc

from ansim_sdk.errors import InvalidArgument
from ansim_sdk.validation import validate
from reference_server.context import ServerContext
from reference_server.domain.retention import retention_registry
from reference_server.domain.safe_trip import purge
from reference_server.domain.safe_trip.engine import SafeTrips
from reference_server.domain.safe_trip.scheduler import TripScheduler
from reference_server.domain.safe_trip.timers import TripTimerConfig
from reference_server.domain.safe_trip.watch import watch
from reference_server.security.caller import current_caller

SERVICE = "ansim.v1.SafeTripService"
#: Key of the running SafeTrips in ``ctx.domain.extra`` (tests and other areas may look it up).
SAFE_TRIPS_PORT = "safe_trips"

Context = grpc.aio.ServicerContext[Any, Any]
S = safe_trip_pb2


class SafeTripServicer(safe_trip_pb2_grpc.SafeTripServiceServicer):
    def __init__(self, trips: SafeTrips) -> None:
        self.trips = trips

    async def StartSafeTrip(self, request: S.StartSafeTripRequest, context: Context) -> S.SafeTrip:
        try:
            validate(request)
        except InvalidArgument as error:
            # The message-level TRIP-001 rule (arrival vs. start fix) is about expected_arrival_time.
            violations = [
                replace(v, field=v.field or "expected_arrival_time") for v in error.field_violations
            ]
            raise InvalidArgument(violations) from None
        return await self.trips.start(current_caller(), request)

    async def GetSafeTrip(self, request: S.GetSafeTripRequest, context: Context) -> S.SafeTrip:
        validate(request)
        return await self.trips.get(current_caller(), request.name)

    async def UpdateTripLocation(
        self, request: S.UpdateTripLocationRequest, context: Context
    ) -> S.UpdateTripLocationResponse:
        validate(request)
        return await self.trips.update_location(current_caller(), request)

    async def ExtendSafeTrip(self, request: S.ExtendSafeTripRequest, context: Context) -> S.SafeTrip:
        validate(request)
        return await self.trips.extend(current_caller(), request)

    async def ArriveSafeTrip(self, request: S.ArriveSafeTripRequest, context: Context) -> S.SafeTrip:
        validate(request)
        return await self.trips.finish(current_caller(), "ArriveSafeTrip", request, S.SAFE_TRIP_STATE_ARRIVED)

    async def EndSafeTrip(self, request: S.EndSafeTripRequest, context: Context) -> S.SafeTrip:
        validate(request)
        return await self.trips.finish(current_caller(), "EndSafeTrip", request, S.SAFE_TRIP_STATE_ENDED)

    async def ResolveTripAlert(self, request: S.ResolveTripAlertRequest, context: Context) -> S.SafeTrip:
        validate(request)
        return await self.trips.resolve(current_caller(), request)

    async def WatchSafeTrip(
        self, request: S.WatchSafeTripRequest, context: Context
    ) -> AsyncIterator[S.SafeTripEvent]:
        validate(request)
        async for event in watch(self.trips, current_caller(), request):
            yield event


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    trips = SafeTrips(
        ctx, TripTimerConfig.from_settings(ctx.settings.timers, demo=ctx.demo_issuer is not None)
    )
    ctx.domain.extra[SAFE_TRIPS_PORT] = trips
    registry = retention_registry(ctx)
    registry.register_purge("location_traces", purge.purge_live_fixes)
    registry.register_purge("test_location_traces", purge.purge_test_fixes)
    registry.register_purge("notifications", purge.purge_messages)
    scheduler = TripScheduler(trips)
    ctx.domain.extra["safe_trips.scheduler"] = scheduler
    scheduler.start()
    ctx.lifecycle.on_stop("safe-trip duress", trips.drain, "drain")
    background = getattr(ctx, "background", None)
    if isinstance(background, list) and scheduler.task is not None:
        background.append(scheduler.task)  # cancelled at shutdown before the store closes
    safe_trip_pb2_grpc.add_SafeTripServiceServicer_to_server(SafeTripServicer(trips), server)
    return [SERVICE]
