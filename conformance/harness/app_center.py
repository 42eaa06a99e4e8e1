"""The harness center for the **app** profile: EmergencyService (RaiseEmergency, StreamLocation,
WatchEmergency, CancelEmergency).

Scripted faults (the app is not told):

- the first RaiseEmergency fails UNAVAILABLE with a misleading message text [APP-001, ERR-005];
- the first StreamLocation acknowledges fixes 1 and 2, then receives fix 3 and breaks without
  acknowledging it [APP-005];
- the first WatchEmergency sends two events and breaks; the next one redelivers the last event
  (at-least-once) before the new ones, among them HANDLING_CENTER_CHANGED [APP-006, STM-005, APP-010];
- the first CancelEmergency fails UNAVAILABLE with an ErrorInfo reason the standard does not define
  [IDM-004, ERR-006];
- after the cancel the watch stream ends with STATE_CHANGED → CANCELLED and StreamLocation ends
  FAILED_PRECONDITION / EMERGENCY_NOT_ACTIVE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ansim.v1 import common_pb2, emergency_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from conformance.harness.faults import not_active, unavailable
from conformance.harness.recording import Call
from conformance.harness.scenario import Step
from conformance.harness.server import CENTER, Context, HarnessCenter, Rpc

E = emergency_pb2
SERVICE = "ansim.v1.EmergencyService"
#: Fixes the app is asked to send, and the interval it is told to keep (APP-004: at most 1 per s).
FIXES = 5
FIX_INTERVAL_S = 1.0
#: The first StreamLocation breaks when this fix arrives (unacknowledged).
CUT_AT_FIX = 3
#: The first WatchEmergency breaks after this many events.
CUT_AT_EVENT = 2
PEER_CENTER = "centers/harness-peer"
#: An EmergencyNature number no version of the standard defines (GEN-040: ignore it, never crash).
UNKNOWN_NATURE = 77


def now_ts() -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.now(UTC))
    return ts


class AppCenter(HarnessCenter):
    role = "app"
    rpcs = (
        Rpc(SERVICE, "RaiseEmergency", E.RaiseEmergencyRequest, "unary"),
        Rpc(SERVICE, "StreamLocation", E.StreamLocationRequest, "bidi"),
        Rpc(SERVICE, "WatchEmergency", E.WatchEmergencyRequest, "server_stream"),
        Rpc(SERVICE, "CancelEmergency", E.CancelEmergencyRequest, "unary"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.emergency: E.Emergency | None = None
        self.events: list[E.EmergencyEvent] = []
        self.fixes: dict[int, bytes] = {}
        self.acked: set[int] = set()
        self.latest_fix: Timestamp | None = None
        self.cancelled = False
        #: Highest event sequence written to a watch stream.
        self.delivered = 0

    # --- the script -----------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        return [
            Step(
                "raise_sos",
                f"Press SOS in the app (mode TEST) so that it raises an emergency at {CENTER}.",
                {
                    "parent": CENTER,
                    "mode": "MODE_TEST",
                    "kind": "EMERGENCY_KIND_APP_SOS",
                    "latitude": 37.5729,
                    "longitude": 126.9794,
                },
                complete=lambda: self.emergency is not None,
            ),
            Step(
                "track",
                f"Keep the emergency active: the app watches it and streams {FIXES} location fixes, "
                f"one every {FIX_INTERVAL_S:g} s, keeping both streams open.",
                lambda: {"name": self.name, "fixes": FIXES, "fix_interval_s": FIX_INTERVAL_S},
                complete=lambda: set(range(1, FIXES + 1)) <= self.acked and self.delivered >= 4,
            ),
            Step(
                "cancel",
                "Cancel the emergency in the app (reason SAFE_NOW).",
                lambda: {"name": self.name, "reason": "EMERGENCY_CANCEL_REASON_SAFE_NOW"},
                complete=lambda: self.cancelled,
            ),
        ]

    @property
    def name(self) -> str:
        return self.emergency.name if self.emergency is not None else ""

    def _snapshot(self) -> E.Emergency:
        assert self.emergency is not None
        copy = E.Emergency()
        copy.CopyFrom(self.emergency)
        return copy

    def _event(self, kind: int, **detail: Any) -> E.EmergencyEvent:
        n = len(self.events) + 1
        event = E.EmergencyEvent(
            cursor=f"harness-watch-{n}",
            sequence=n,
            replay=kind == E.EMERGENCY_EVENT_TYPE_SNAPSHOT,
            event_time=now_ts(),
            type=kind,  # type: ignore[arg-type]
            emergency=self._snapshot(),
            **detail,
        )
        self.events.append(event)
        return event

    def _state(self, state: int) -> E.EmergencyStateChange:
        assert self.emergency is not None
        change = E.EmergencyStateChange(previous_state=self.emergency.state, state=state)  # type: ignore[arg-type]
        self.emergency.state = state  # type: ignore[assignment]
        self.emergency.update_time.CopyFrom(now_ts())
        return change

    # --- rpcs -----------------------------------------------------------------------------------

    async def RaiseEmergency(self, call: Call, request: Message, context: Context) -> Message:
        assert isinstance(request, E.RaiseEmergencyRequest)
        if self.count("RaiseEmergency") == 1:
            raise unavailable("first RaiseEmergency refused once", misleading=True)
        if self.emergency is None:
            created = now_ts()
            self.emergency = E.Emergency(
                name=f"{CENTER}/emergencies/{self.new_id('e')}",
                incident_id=self.new_id("HARNESS").upper(),
                kind=request.kind or E.EMERGENCY_KIND_APP_SOS,
                state=E.EMERGENCY_STATE_RAISED,
                mode=request.mode or common_pb2.MODE_TEST,
                last_location=request.location,
                home_center=CENTER,
                handling_center=CENTER,
                create_time=created,
                update_time=created,
                raise_time=created,
            )
            self.emergency.nature = UNKNOWN_NATURE  # type: ignore[assignment]
            self._event(E.EMERGENCY_EVENT_TYPE_SNAPSHOT)
            self._event(
                E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, state_change=self._state(E.EMERGENCY_STATE_ACKNOWLEDGED)
            )
        return self._snapshot()

    async def CancelEmergency(self, call: Call, request: Message, context: Context) -> Message:
        assert isinstance(request, E.CancelEmergencyRequest)
        if self.count("CancelEmergency") == 1:
            raise unavailable("first CancelEmergency refused once", unknown_reason=True)
        if self.emergency is None:
            raise not_active("no emergency was raised")
        if not self.cancelled:
            change = self._state(E.EMERGENCY_STATE_CANCELLED)
            self.emergency.cancel_reason = request.reason or E.EMERGENCY_CANCEL_REASON_SAFE_NOW
            self.emergency.end_time.CopyFrom(now_ts())
            self._event(E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, state_change=change)
            self.cancelled = True
        return self._snapshot()

    async def StreamLocation(self, call: Call, context: Context) -> None:
        first = self.count("StreamLocation") == 1
        received = 0
        ended = asyncio.ensure_future(self.wait_for(lambda: self.cancelled, 3600))
        try:
            while True:
                reading = asyncio.ensure_future(self.read(call, context))
                await asyncio.wait({reading, ended}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    raise not_active("the emergency was cancelled")
                request = reading.result()
                if request is None:
                    return
                assert isinstance(request, E.StreamLocationRequest)
                received += 1
                if self.cancelled:
                    raise not_active("the emergency was cancelled")
                if first and received == CUT_AT_FIX:
                    raise unavailable(f"stream broken on fix {CUT_AT_FIX}, before its ack")
                await self.write(call, context, self._ack(request))
        finally:
            ended.cancel()

    def _ack(self, request: E.StreamLocationRequest) -> E.LocationAck:
        content = request.location.SerializeToString(deterministic=True)
        seq = request.sequence
        if seq in self.fixes:
            status = E.LOCATION_ACK_STATUS_DUPLICATE
        else:
            self.fixes[seq] = content
            fix_time = request.location.fix_time
            if self.latest_fix is not None and fix_time.ToNanoseconds() < self.latest_fix.ToNanoseconds():
                status = E.LOCATION_ACK_STATUS_ACCEPTED_OLDER
            else:
                self.latest_fix = fix_time
                status = E.LOCATION_ACK_STATUS_ACCEPTED
        self.acked.add(seq)
        ack = E.LocationAck(sequence=max(seq, 1), status=status)
        if self.latest_fix is not None:
            ack.current_fix_time.CopyFrom(self.latest_fix)
        return ack

    def _after(self, sent: int) -> Callable[[], bool]:
        return lambda: len(self.events) > sent or self.cancelled

    async def WatchEmergency(self, call: Call, request: Message, context: Context) -> None:
        assert isinstance(request, E.WatchEmergencyRequest)
        watch = self.count("WatchEmergency")
        if watch == 1:
            for event in self.events[:CUT_AT_EVENT]:
                await self.write(call, context, event)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            raise unavailable(f"watch stream broken after {CUT_AT_EVENT} events")
        if watch == 2 and len(self.events) == CUT_AT_EVENT and self.emergency is not None:
            handoff = E.HandlingCenterChange(
                previous_center=CENTER, handling_center=PEER_CENTER, center_display_name="Harness peer center"
            )
            self.emergency.handling_center = PEER_CENTER
            self._event(E.EMERGENCY_EVENT_TYPE_HANDLING_CENTER_CHANGED, handling_change=handoff)
            self._event(
                E.EMERGENCY_EVENT_TYPE_STATE_CHANGED, state_change=self._state(E.EMERGENCY_STATE_DISPATCHED)
            )
        # Resume: redeliver the event of the cursor (at-least-once), then everything after it.
        start = 0
        if request.resume_cursor:
            for i, event in enumerate(self.events):
                if event.cursor == request.resume_cursor:
                    start = i
            call.faults.append("redelivered the event of the resume cursor (at-least-once)")
        elif watch > 1:
            start = CUT_AT_EVENT - 1
            call.faults.append("redelivered the last event before the break (at-least-once)")
        sent = start
        while True:
            while sent < len(self.events):
                self.delivered = max(self.delivered, self.events[sent].sequence)
                await self.write(call, context, self.events[sent])
                sent += 1
            if self.cancelled and sent >= len(self.events):
                return
            await self.wait_for(self._after(sent), 3600)
