"""TagEventService (child_safety.proto, spec §14.4): the reader-gateway ingest, streaming and batch.

Both rpcs hand each event to the same :class:`~reference_server.domain.child_safety.ingest.Ingest`
(TAG-001), which answers with the event's ack once it is durable (TAG-002)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ansim.v1 import child_safety_pb2 as cs
from ansim.v1 import child_safety_pb2_grpc

from ansim_sdk.errors import FieldViolation, InvalidArgument
from ansim_sdk.validation import violations_of
from reference_server.domain.child_safety.area import ChildSafetyArea
from reference_server.security.caller import current_caller
from reference_server.store.idempotency import request_hash

SERVICE = "ansim.v1.TagEventService"
SUBMIT = f"/{SERVICE}/SubmitTagEvents"


class TagEventServicer(child_safety_pb2_grpc.TagEventServiceServicer):
    def __init__(self, area: ChildSafetyArea) -> None:
        self.area = area

    async def IngestTagEvents(
        self, request_iterator: AsyncIterator[cs.IngestTagEventsRequest], context: object
    ) -> AsyncIterator[cs.TagEventAck]:
        caller = current_caller()
        async for request in request_iterator:
            if not request.HasField("event"):
                raise InvalidArgument([FieldViolation("event", "required: one TagEvent per message")])
            # One ack per event, sent once the event is durable (TAG-002, TAG-008); a rejected event
            # leaves the stream open (TAG-007).
            yield await self.area.ingest.handle(caller, request.event)

    async def SubmitTagEvents(
        self, request: cs.SubmitTagEventsRequest, context: object
    ) -> cs.SubmitTagEventsResponse:
        # The call's own constraints fail it as a whole; each event's are its own ack's (TAG-009).
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
        for event in request.events:
            response.acks.append(await self.area.ingest.handle(caller, event))
        async with store.transaction() as tx:
            await tx.idempotency_record(
                caller.key, SUBMIT, request.request_id, digest, response.SerializeToString()
            )
        return response
