"""The harness center for the **agency** profile: DispatchService (SubscribeDispatches,
AcknowledgeDispatch, UpdateDispatchStatus, CloseDispatch).

The subscription is scripted in stages, whatever cursor the client sends (the cases check the
cursor; the stages make every behaviour observable even after a client got one wrong):

1. replay dispatch d-1 (PENDING), REPLAY_COMPLETE, CREATED d-2 (PENDING); once both are
   acknowledged (the first AcknowledgeDispatch fails UNAVAILABLE once), ACKNOWLEDGED d-1 and d-2 —
   then the stream breaks [AGY-001, AGY-005, AGY-002];
2. redeliver event 5 (at-least-once), then event 7 — event 6 is skipped, a gap [AGY-003];
3. answer OUT_OF_RANGE / CURSOR_EXPIRED [AGY-004];
4. a new scope: replay d-2 only (d-1 was closed meanwhile), REPLAY_COMPLETE; then stay open.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ansim.v1 import common_pb2, dispatch_pb2, emergency_pb2
from google.protobuf.message import Message

from conformance.harness.app_center import now_ts
from conformance.harness.faults import cursor_expired, unavailable
from conformance.harness.recording import Call
from conformance.harness.scenario import Step
from conformance.harness.server import CENTER, Context, HarnessCenter, Rpc

D = dispatch_pb2
SERVICE = "ansim.v1.DispatchService"
AGENCY = "agencies/harness-112"
#: Seconds from a dispatch's creation to its ack_deadline in the harness (30 s in the standard; the
#: harness is stricter so that a run stays short — a client acks as soon as a unit is assigned).
ACK_DEADLINE_S = 10
#: An DispatchCloseReason number no version of the standard defines (GEN-040).
UNKNOWN_CLOSE_REASON = 66
#: How long the harness keeps the stream with the gap open for a client that does not react to it.
GAP_GRACE_S = 2.0


class AgencyCenter(HarnessCenter):
    role = "agency"
    rpcs = (
        Rpc(SERVICE, "SubscribeDispatches", D.SubscribeDispatchesRequest, "server_stream"),
        Rpc(SERVICE, "AcknowledgeDispatch", D.AcknowledgeDispatchRequest, "unary"),
        Rpc(SERVICE, "UpdateDispatchStatus", D.UpdateDispatchStatusRequest, "unary"),
        Rpc(SERVICE, "CloseDispatch", D.CloseDispatchRequest, "unary"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatches: dict[str, D.Dispatch] = {}
        #: Scope A (stages 1-3) and scope B (stage 4) events.
        self.scope_a: list[D.DispatchEvent] = []
        self.scope_b: list[D.DispatchEvent] = []
        self.stage = 0
        self.replayed_b = False

    def steps(self) -> list[Step]:
        return [
            Step(
                "subscribe",
                f"Subscribe to {CENTER}'s TEST dispatches for {AGENCY}; acknowledge every PENDING "
                "dispatch with a unit as soon as you receive it, and keep the subscription going.",
                {"parent": CENTER, "agency": AGENCY, "mode": "MODE_TEST", "unit_id": "harness-unit-1"},
                complete=lambda: self.replayed_b,
            ),
            Step(
                "report_status",
                "Report the unit of the active dispatch EN_ROUTE, then ON_SCENE, then CLEARED.",
                lambda: {
                    "dispatch": self._name("d-2"),
                    "states": [
                        "DISPATCH_STATE_EN_ROUTE",
                        "DISPATCH_STATE_ON_SCENE",
                        "DISPATCH_STATE_CLEARED",
                    ],
                },
                complete=lambda: (
                    self.dispatches.get(self._name("d-2"), D.Dispatch()).state == D.DISPATCH_STATE_CLEARED
                ),
            ),
        ]

    @staticmethod
    def _name(short: str) -> str:
        return f"{CENTER}/dispatches/{short}"

    def _dispatch(self, short: str) -> D.Dispatch:
        name = self._name(short)
        if name not in self.dispatches:
            created = now_ts()
            deadline = now_ts()
            deadline.FromNanoseconds(created.ToNanoseconds() + ACK_DEADLINE_S * 1_000_000_000)
            self.dispatches[name] = D.Dispatch(
                name=name,
                emergency=f"{CENTER}/emergencies/e-{short}",
                incident_id=f"HARNESS-INCIDENT-{short.upper()}",
                agency=AGENCY,
                agency_kind=common_pb2.AGENCY_KIND_POLICE_112,
                mode=common_pb2.MODE_TEST,
                summary=D.EmergencySummary(kind=emergency_pb2.EMERGENCY_KIND_APP_SOS, raise_time=created),
                state=D.DISPATCH_STATE_PENDING,
                ack_deadline=deadline,
                create_time=created,
                update_time=created,
            )
        return self.dispatches[name]

    def _event(
        self, scope: list[D.DispatchEvent], kind: int, dispatch: D.Dispatch | None, label: str
    ) -> None:
        n = len(scope) + 1
        event = D.DispatchEvent(
            cursor=f"harness-{label}-{n}",
            sequence=n,
            type=kind,  # type: ignore[arg-type]
            replay=kind in (D.DISPATCH_EVENT_TYPE_SNAPSHOT, D.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE),
            event_time=now_ts(),
        )
        if dispatch is not None:
            event.dispatch.CopyFrom(dispatch)
        scope.append(event)

    def acknowledged(self, short: str) -> bool:
        dispatch = self.dispatches.get(self._name(short))
        return dispatch is not None and dispatch.state != D.DISPATCH_STATE_PENDING

    async def _send(self, call: Call, context: Context, events: list[D.DispatchEvent]) -> None:
        for event in events:
            await self.write(call, context, event)
            await asyncio.sleep(0.02)

    async def SubscribeDispatches(self, call: Call, request: Message, context: Context) -> None:
        self.stage += 1
        stage = self.stage
        a = self.scope_a
        if stage == 1:
            self._event(a, D.DISPATCH_EVENT_TYPE_SNAPSHOT, self._dispatch("d-1"), "a")
            self._event(a, D.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE, None, "a")
            self._event(a, D.DISPATCH_EVENT_TYPE_CREATED, self._dispatch("d-2"), "a")
            await self._send(call, context, a[:3])
            await self.wait_for(lambda: self.acknowledged("d-1") and self.acknowledged("d-2"), ACK_DEADLINE_S)
            self._event(a, D.DISPATCH_EVENT_TYPE_ACKNOWLEDGED, self.dispatches[self._name("d-1")], "a")
            self._event(a, D.DISPATCH_EVENT_TYPE_ACKNOWLEDGED, self.dispatches[self._name("d-2")], "a")
            await self._send(call, context, a[3:5])
            await asyncio.sleep(0.3)
            raise unavailable("subscription broken after event 5")
        if stage == 2:
            d1 = self.dispatches[self._name("d-1")]
            d1.state = D.DISPATCH_STATE_CLOSED
            d1.close_reason = UNKNOWN_CLOSE_REASON  # type: ignore[assignment]
            d1.update_time.CopyFrom(now_ts())
            self._event(a, D.DISPATCH_EVENT_TYPE_CLOSED, d1, "a")
            self._event(a, D.DISPATCH_EVENT_TYPE_UPDATED, self.dispatches[self._name("d-2")], "a")
            call.faults.append("redelivered event 5 (at-least-once), then skipped event 6 (a gap)")
            await self._send(call, context, [a[4], a[6]])
            await asyncio.sleep(GAP_GRACE_S)
            raise unavailable(f"the client did not resubscribe within {GAP_GRACE_S:g} s of the gap; closed")
        if stage == 3:
            raise cursor_expired("the cursor expired")
        b = self.scope_b
        if not b:
            self._event(b, D.DISPATCH_EVENT_TYPE_SNAPSHOT, self.dispatches[self._name("d-2")], "b")
            self._event(b, D.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE, None, "b")
        assert isinstance(request, D.SubscribeDispatchesRequest)
        start = next((i for i, e in enumerate(b) if e.cursor == request.resume_cursor), 0)
        await self._send(call, context, b[start:])
        self.replayed_b = True
        await self.notify()
        await asyncio.sleep(3600)

    async def AcknowledgeDispatch(self, call: Call, request: Message, context: Context) -> Message:
        assert isinstance(request, D.AcknowledgeDispatchRequest)
        if self.count("AcknowledgeDispatch") == 1:
            raise unavailable("first AcknowledgeDispatch refused once", unknown_reason=True, misleading=True)
        dispatch = self.dispatches.get(request.name) or self._dispatch(request.name.rsplit("/", 1)[-1])
        if dispatch.state == D.DISPATCH_STATE_PENDING:
            dispatch.state = D.DISPATCH_STATE_ACKNOWLEDGED
            dispatch.unit_id = request.unit_id
            dispatch.acknowledge_time.CopyFrom(now_ts())
            if request.HasField("eta_duration"):
                eta = now_ts()
                eta.FromNanoseconds(eta.ToNanoseconds() + request.eta_duration.ToNanoseconds())
                dispatch.eta_time.CopyFrom(eta)
            dispatch.update_time.CopyFrom(now_ts())
        return dispatch

    async def UpdateDispatchStatus(self, call: Call, request: Message, context: Context) -> Message:
        assert isinstance(request, D.UpdateDispatchStatusRequest)
        if self.count("UpdateDispatchStatus") == 1:
            raise unavailable("first UpdateDispatchStatus refused once")
        dispatch = self.dispatches.get(request.name) or self._dispatch(request.name.rsplit("/", 1)[-1])
        dispatch.state = request.state
        dispatch.update_time.CopyFrom(now_ts())
        return dispatch

    async def CloseDispatch(self, call: Call, request: Message, context: Context) -> Message:
        assert isinstance(request, D.CloseDispatchRequest)
        dispatch = self.dispatches.get(request.name) or self._dispatch(request.name.rsplit("/", 1)[-1])
        dispatch.state = D.DISPATCH_STATE_CLOSED
        dispatch.close_reason = D.DISPATCH_CLOSE_REASON_AGENCY
        dispatch.update_time.CopyFrom(now_ts())
        return dispatch
