"""The harness center for the **reader-gateway** profile: TagEventService (IngestTagEvents,
SubmitTagEvents).

Scripted faults (the gateway is not told):

- ``stream_events``: the first IngestTagEvents acknowledges event 1, receives events 2 and 3 and
  breaks with UNAVAILABLE, RetryInfo 0.5 s, an unknown ErrorInfo reason and a misleading text
  [GW-002, GW-006, ERR-005, ERR-006];
- ``offline_then_press``: the open stream is broken and every call refused for 1.5 s while the
  gateway records sightings and then a button press [GW-004]; a sighting of an unknown tag is
  acknowledged REJECTED [GW-003];
- ``backlog``: acks are withheld while the gateway records 600 events, until it stalls (or sends
  more than 500) [GW-007];
- ``submit_batch``: the first SubmitTagEvents fails UNAVAILABLE [IDM-004, GW-002].
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from ansim.v1 import child_safety_pb2
from google.protobuf.message import Message

from conformance.harness.faults import ack_error, unavailable
from conformance.harness.recording import Call
from conformance.harness.scenario import Step
from conformance.harness.server import CENTER, Context, HarnessCenter, Rpc

C = child_safety_pb2
SERVICE = "ansim.v1.TagEventService"
READER = f"{CENTER}/readers/r-gate-1"
TAG = "TAG-HARNESS-0001"
UNKNOWN_TAG = "TAG-UNKNOWN-0001"
FIRST_STREAM_EVENTS = 3
RETRY_DELAY_S = 0.5
OFFLINE_S = 1.5
BACKLOG = 600
#: Acks are withheld until the gateway stalls this long with a backlog outstanding (it respects its
#: window), until more than MAX_OUTSTANDING are outstanding (it does not), or for at most
#: WITHHOLD_MAX_S.
WITHHOLD_S = 1.0
#: How often the withheld acks are reconsidered.
POLL_S = 0.05
WITHHOLD_MAX_S = 8.0
MAX_OUTSTANDING = 500
ACCEPTED = C.TAG_EVENT_ACK_STATUS_ACCEPTED
DUPLICATE = C.TAG_EVENT_ACK_STATUS_DUPLICATE
REJECTED = C.TAG_EVENT_ACK_STATUS_REJECTED


class GatewayCenter(HarnessCenter):
    role = "reader-gateway"
    rpcs = (
        Rpc(SERVICE, "IngestTagEvents", C.IngestTagEventsRequest, "bidi"),
        Rpc(SERVICE, "SubmitTagEvents", C.SubmitTagEventsRequest, "unary"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: event_id → content of the first copy stored.
        self.stored: dict[str, bytes] = {}
        #: event_id → the last ack status sent for it.
        self.acks: dict[str, int] = {}
        self.offline_until = 0.0
        self.withhold = False
        self.withhold_until: float | None = None
        self.cut = asyncio.Event()
        #: (time, kind) of every ACCEPTED or DUPLICATE ack, for the steps' completion checks.
        self.positive: list[tuple[float, int]] = []
        self.rejected_at: list[float] = []
        #: The recording's time when each step started.
        self.step_started: dict[str, float] = {}

    def _mark(self, name: str) -> None:
        self.step_started[name] = self.rec.now()

    def steps(self) -> list[Step]:
        def acked(kind: int | None = None, since: str = "") -> int:
            t0 = self.step_started.get(since, 0.0)
            return sum(1 for at, k in self.positive if at >= t0 and (kind is None or k == kind))

        def start_offline() -> None:
            self._mark("offline_then_press")
            self.offline_until = self.rec.now() + OFFLINE_S
            self.cut.set()

        def start_backlog() -> None:
            self._mark("backlog")
            self.withhold = True

        return [
            Step(
                "stream_events",
                f"Let reader {READER} see tag {TAG} {FIRST_STREAM_EVENTS} times; the gateway sends the "
                "sightings over IngestTagEvents.",
                {"reader": READER, "tag_uid": TAG, "sightings": FIRST_STREAM_EVENTS},
                complete=lambda: (
                    len([e for e, s in self.acks.items() if s in (ACCEPTED, DUPLICATE)])
                    >= FIRST_STREAM_EVENTS
                ),
                on_start=lambda: self._mark("stream_events"),
            ),
            Step(
                "offline_then_press",
                f"The center is unreachable for {OFFLINE_S:g} s: let the reader see tag {TAG} twice and "
                f"tag {UNKNOWN_TAG} once, then press the tag's button; the gateway delivers them when the "
                "center is back.",
                {
                    "reader": READER,
                    "tag_uid": TAG,
                    "sightings": 2,
                    "unknown_tag_uid": UNKNOWN_TAG,
                    "press_after_s": 0.3,
                },
                complete=lambda: (
                    acked(C.TAG_EVENT_KIND_BUTTON_PRESS, "offline_then_press") >= 1
                    and acked(C.TAG_EVENT_KIND_SIGHTING, "offline_then_press") >= 2
                    and any(at >= self.step_started["offline_then_press"] for at in self.rejected_at)
                ),
                on_start=start_offline,
            ),
            Step(
                "backlog",
                f"Let the reader record {BACKLOG} sightings in a burst (the center is slow to acknowledge).",
                {"reader": READER, "tag_uid": TAG, "sightings": BACKLOG},
                complete=lambda: acked(None, "backlog") >= BACKLOG,
                on_start=start_backlog,
            ),
            Step(
                "submit_batch",
                "Deliver 2 more sightings with SubmitTagEvents (the unary rpc).",
                {"reader": READER, "tag_uid": TAG, "sightings": 2},
                complete=lambda: any(c.ok for c in self.rec.of("SubmitTagEvents")),
                on_start=lambda: self._mark("submit_batch"),
            ),
        ]

    def _ack(self, event: C.TagEvent) -> C.TagEventAck:
        ack = C.TagEventAck(event_id=event.event_id)
        content = event.SerializeToString(deterministic=True)
        if event.tag_uid == UNKNOWN_TAG:
            ack.status = REJECTED
            ack.error.CopyFrom(ack_error(grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND", "unknown tag"))
        elif event.event_id in self.stored:
            if self.stored[event.event_id] == content:
                ack.status = DUPLICATE
            else:
                ack.status = REJECTED
                ack.error.CopyFrom(
                    ack_error(
                        grpc.StatusCode.ALREADY_EXISTS,
                        "REQUEST_ID_REUSED",
                        "event_id reused with other content",
                    )
                )
        else:
            self.stored[event.event_id] = content
            ack.status = ACCEPTED
        self.acks[event.event_id] = ack.status
        if ack.status in (ACCEPTED, DUPLICATE):
            self.positive.append((self.rec.now(), event.kind))
        else:
            self.rejected_at.append(self.rec.now())
        return ack

    async def SubmitTagEvents(self, call: Call, request: Message, context: Context) -> Message:
        assert isinstance(request, C.SubmitTagEventsRequest)
        if self.count("SubmitTagEvents") == 1:
            raise unavailable("first SubmitTagEvents refused once", retry_delay_s=RETRY_DELAY_S)
        return C.SubmitTagEventsResponse(acks=[self._ack(e) for e in request.events])

    async def IngestTagEvents(self, call: Call, context: Context) -> None:
        if self.rec.now() < self.offline_until:
            raise unavailable("the center is offline", retry_delay_s=0.3)
        first = self.count("IngestTagEvents") == 1
        self.cut.clear()
        lock = asyncio.Lock()
        pending: list[C.TagEventAck] = []
        received = 0
        last_receipt = [0.0]

        async def send(ack: C.TagEventAck) -> None:
            async with lock:
                await self.write(call, context, ack)

        async def flush_later() -> None:
            # Hold the acks until the gateway stops sending (it respects its window) or more than
            # MAX_OUTSTANDING are outstanding (it does not): either way the window is observed.
            # The gateway's silence is counted only while this process was responsive: when the
            # harness's own event loop was held up (other sessions, a loaded machine), the events
            # sent meanwhile are still waiting to be read, and a late poll must not pass for a
            # gateway that stopped at its window.
            assert self.withhold_until is not None
            responsive_since = self.rec.now()
            while len(pending) <= MAX_OUTSTANDING and self.rec.now() < self.withhold_until:
                polled = self.rec.now()
                await asyncio.sleep(POLL_S)
                if self.rec.now() - polled > 2 * POLL_S:
                    responsive_since = self.rec.now()
                quiet = self.rec.now() - max(last_receipt[0], responsive_since)
                if quiet >= WITHHOLD_S and len(pending) >= BACKLOG // 4:
                    break
            self.withhold = False
            while pending:
                await send(pending.pop(0))

        flusher: asyncio.Future[None] | None = None
        cut = asyncio.ensure_future(self.cut.wait())
        try:
            while True:
                reading = asyncio.ensure_future(self.read(call, context))
                await asyncio.wait({reading, cut}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    raise unavailable("the center went offline", retry_delay_s=0.3)
                request = reading.result()
                if request is None:
                    if flusher is not None:
                        await flusher
                    return
                assert isinstance(request, C.IngestTagEventsRequest)
                received += 1
                last_receipt[0] = self.rec.now()
                if first and received > 1:
                    if received == FIRST_STREAM_EVENTS:
                        raise unavailable(
                            f"stream broken after {received} events, 2 of them unacknowledged",
                            retry_delay_s=RETRY_DELAY_S,
                            unknown_reason=True,
                            misleading=True,
                        )
                    continue
                ack = self._ack(request.event)
                if self.withhold:
                    if self.withhold_until is None:
                        self.withhold_until = self.rec.now() + WITHHOLD_MAX_S
                        call.faults.append("acks withheld until the gateway stalls or exceeds its window")
                        flusher = asyncio.ensure_future(flush_later())
                    pending.append(ack)
                    continue
                await send(ack)
        finally:
            cut.cancel()
            if flusher is not None and not flusher.done():
                flusher.cancel()


def _events(message: Message) -> list[C.TagEvent]:
    if isinstance(message, C.IngestTagEventsRequest):
        return [message.event]
    if isinstance(message, C.SubmitTagEventsRequest):
        return list(message.events)
    return []
