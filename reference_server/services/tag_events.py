"""TagEventService (child_safety.proto, spec §14.4): the reader-gateway ingest, streaming and batch.

Both rpcs hand their events to the same :class:`~reference_server.domain.child_safety.ingest.Ingest`
(TAG-001), which answers with each event's ack once it is durable (TAG-002). A stream's events that
are waiting when the previous ones are acked are handled together (``Ingest.handle_many``): they
share one commit, and their acks follow it in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc

from ansim_sdk.errors import FieldViolation, InvalidArgument
from ansim_sdk.validation import violations_of
from reference_server.domain.child_safety.area import ChildSafetyArea
from reference_server.domain.child_safety.event_check import batch_plainly_valid
from reference_server.security.caller import current_caller
from reference_server.store.idempotency import request_hash

SERVICE = "ansim.v1.TagEventService"
SUBMIT = f"/{SERVICE}/SubmitTagEvents"
#: Events of one stream read ahead of their acks at most (flow control towards the gateway).
READ_AHEAD = 256


class TagEventServicer(child_safety_pb2_grpc.TagEventServiceServicer):
    def __init__(self, area: ChildSafetyArea) -> None:
        self.area = area

    async def IngestTagEvents(
        self, request_iterator: AsyncIterator[cs.IngestTagEventsRequest], context: object
    ) -> AsyncIterator[cs.TagEventAck]:
        caller = current_caller()
        #: Events read from the stream, then its end: None, or the error that ends it.
        waiting: asyncio.Queue[cs.TagEvent | BaseException | None] = asyncio.Queue(READ_AHEAD)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    if not request.HasField("event"):
                        raise InvalidArgument([FieldViolation("event", "required: one TagEvent per message")])
                    await waiting.put(request.event)
            except Exception as error:
                await waiting.put(error)
            else:
                await waiting.put(None)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            while True:
                items = [await waiting.get()]
                while not waiting.empty():
                    items.append(waiting.get_nowait())
                end = items[-1] if not isinstance(items[-1], cs.TagEvent) else False
                events = [i for i in items if isinstance(i, cs.TagEvent)]
                # One ack per event, sent once the event is durable (TAG-002, TAG-008); a rejected
                # event leaves the stream open (TAG-007).
                for event_ack in await self.area.ingest.handle_many(caller, events):
                    yield event_ack
                if isinstance(end, BaseException):
                    raise end
                if end is None:
                    return
        finally:
            reader.cancel()

    async def SubmitTagEvents(
        self, request: cs.SubmitTagEventsRequest, context: object
    ) -> cs.SubmitTagEventsResponse:
        # The call's own constraints fail it as a whole; each event's are its own ack's (TAG-009),
        # checked once per event by the ingest (protovalidate only when the quick check is unsure).
        if not batch_plainly_valid(request):
            own = [v for v in violations_of(request) if not v.field.startswith("events[")]
            if own:
                raise InvalidArgument(own)
        caller = current_caller()
        digest = request_hash(request)
        store = self.area.ctx.store
        async with store.transaction() as tx:
            stored = await tx.idempotency_lookup(caller.key, SUBMIT, request.request_id, digest)
        if stored is not None:
            return cs.SubmitTagEventsResponse.FromString(stored)
        response = cs.SubmitTagEventsResponse()
        response.acks.extend(await self.area.ingest.handle_many(caller, request.events))
        async with store.transaction() as tx:
            await tx.idempotency_record(
                caller.key, SUBMIT, request.request_id, digest, response.SerializeToString()
            )
        return response
