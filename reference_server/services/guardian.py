"""GuardianService (guardian.proto, spec §15): notification streams, reads and acknowledgements,
and the ward's location and track."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ansim.v1 import error_pb2, guardian_pb2_grpc
from ansim.v1 import guardian_pb2 as gd

from ansim_sdk.errors import AnsimError
from reference_server.domain.child_safety.area import ChildSafetyArea
from reference_server.domain.child_safety.common import check_request, parse
from reference_server.domain.child_safety.notifications import stream_scope
from reference_server.domain.child_safety.replay import snapshot
from reference_server.domain.paging import page_size
from reference_server.events.publisher import DeliveredEvent
from reference_server.events.wire import with_position
from reference_server.security.caller import current_caller
from reference_server.store.idempotency import request_hash

SERVICE = "ansim.v1.GuardianService"
ACKNOWLEDGE = f"/{SERVICE}/AcknowledgeNotification"


class GuardianServicer(guardian_pb2_grpc.GuardianServiceServicer):
    def __init__(self, area: ChildSafetyArea) -> None:
        self.area = area
        self.ctx = area.ctx
        self.notifier = area.notifier
        self._last_wire: tuple[DeliveredEvent, bytes] | None = None

    async def StreamNotifications(  # type: ignore[override]  # registered to write bytes as they are
        self, request: gd.StreamNotificationsRequest, context: object
    ) -> AsyncIterator[gd.StreamNotificationsResponse | bytes]:
        """Replayed items as messages, live ones already serialised: a live event of the
        recipient's scope is the same object for each of the recipient's streams, so its wire form
        is made once for all of them."""
        check_request(request)
        self.notifier.check_owner(current_caller(), request.parent)
        scope = stream_scope(request.parent)
        cursor = request.resume_cursor
        if not cursor:
            replay = await snapshot(self.ctx.store, self.ctx.publisher, request.parent, self.notifier)
            for item in replay.items:
                yield item
            cursor = replay.cursor
        publisher = self.ctx.publisher
        async with contextlib.aclosing(publisher.subscribe(scope, cursor)) as events:
            async for event in events:
                yield self._wire(event)

    def _wire(self, event: DeliveredEvent) -> bytes:
        last = self._last_wire
        if last is None or last[0] is not event:
            last = self._last_wire = (event, with_position(event.payload, event.cursor, event.sequence))
        return last[1]

    async def GetNotification(self, request: gd.GetNotificationRequest, context: object) -> gd.Notification:
        check_request(request)
        return await self.notifier.get(self.ctx.store, current_caller(), request.name)

    async def ListNotifications(
        self, request: gd.ListNotificationsRequest, context: object
    ) -> gd.ListNotificationsResponse:
        check_request(request)
        caller = current_caller()
        self.notifier.check_owner(caller, request.parent)
        scope_request = gd.ListNotificationsRequest()
        scope_request.CopyFrom(request)
        scope_request.ClearField("page_token")
        scope_request.ClearField("page_size")
        scope = f"notifications|{caller.key}|" + scope_request.SerializeToString(deterministic=True).hex()
        after = str(self.area.pages.decode(scope, "", request.page_token) or "")
        size = page_size(request.page_size)
        rows = await self.ctx.store.fetchall(
            "SELECT body FROM cs_notifications WHERE recipient = ? AND name > ? ORDER BY name",
            (request.parent, after),
        )
        out = gd.ListNotificationsResponse()
        for r in rows:
            copy = parse(gd.Notification, r["body"])
            if request.ward and copy.ward != request.ward:
                continue
            if request.unacknowledged_only and copy.HasField("acknowledged_by"):
                continue
            if copy.severity < request.min_severity:
                continue
            if len(out.notifications) == size:
                out.next_page_token = self.area.pages.encode(scope, "", out.notifications[-1].name)
                break
            out.notifications.append(copy)
        return out

    async def AcknowledgeNotification(
        self, request: gd.AcknowledgeNotificationRequest, context: object
    ) -> gd.Notification:
        check_request(request)
        caller = current_caller()
        digest = request_hash(request)
        async with self.ctx.store.transaction() as tx:
            stored = await tx.idempotency_lookup(caller.key, ACKNOWLEDGE, request.request_id, digest)
            if stored is not None:
                return gd.Notification.FromString(stored)
            copy, effective = await self.notifier.acknowledge(tx, caller, request.name, request.note)
            if effective:
                await tx.idempotency_record(
                    caller.key, ACKNOWLEDGE, request.request_id, digest, copy.SerializeToString()
                )
                return copy
        # GRD-009: the late acknowledgement is recorded (committed above), the escalation goes on.
        raise AnsimError(
            error_pb2.ERROR_REASON_ACK_TOO_LATE,
            "the notification was escalated past your rung; your acknowledgement is recorded",
        )

    async def GetWardLocation(self, request: gd.GetWardLocationRequest, context: object) -> gd.WardLocation:
        check_request(request)
        return await self.area.locations.get_location(current_caller(), request)

    async def ListWardTrack(
        self, request: gd.ListWardTrackRequest, context: object
    ) -> gd.ListWardTrackResponse:
        check_request(request)
        return await self.area.locations.list_track(current_caller(), request)
