"""WatchSafeTrip (spec §11.7, TRIP-016): a snapshot, then every change, ending after FINISHED."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ansim.v1 import safe_trip_pb2

from reference_server.domain.safe_trip.engine import SafeTrips, scope
from reference_server.domain.safe_trip.model import stamp
from reference_server.domain.safe_trip.views import require_reader, view
from reference_server.security.caller import Caller

S = safe_trip_pb2
#: How long a stream of a finished trip, resumed with a cursor, waits for history before it ends.
FINISHED_HISTORY_WAIT_S = 1.0


async def watch(
    trips: SafeTrips, caller: Caller, request: safe_trip_pb2.WatchSafeTripRequest
) -> AsyncIterator[safe_trip_pb2.SafeTripEvent]:
    store, publisher = trips.ctx.store, trips.ctx.publisher
    name = request.name
    record = await trips._load(store, name)
    require_reader(caller, record)
    events_scope = scope(name)
    _, last = await store.event_bounds(events_scope)  # before re-reading: later changes follow
    record = await trips._load(store, name)
    cursor = request.resume_cursor
    if not cursor:
        yield S.SafeTripEvent(
            cursor=publisher.cursor(events_scope, last),
            sequence=last,
            replay=True,
            event_time=stamp(trips.ctx.clock.now()),
            type=S.SAFE_TRIP_EVENT_TYPE_SNAPSHOT,
            safe_trip=view(caller, record),
        )
        if not record.active:
            return
        cursor = publisher.cursor(events_scope, last)
    finished = not record.active
    async with contextlib.aclosing(publisher.subscribe(events_scope, cursor)) as events:
        iterator = aiter(events)
        while True:
            try:
                if finished:  # history only: end when it runs dry
                    delivered = await asyncio.wait_for(anext(iterator), FINISHED_HISTORY_WAIT_S)
                else:
                    delivered = await anext(iterator)
            except (StopAsyncIteration, TimeoutError):
                return
            event = S.SafeTripEvent.FromString(delivered.payload)
            event.cursor = delivered.cursor
            event.sequence = delivered.sequence
            event.safe_trip.CopyFrom(view(caller, record, event.safe_trip))
            yield event
            if event.type == S.SAFE_TRIP_EVENT_TYPE_FINISHED:
                return
