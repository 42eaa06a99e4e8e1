"""Example reader-gateway client: records tag events with fresh UUIDs, keeps them until acked,
delivers them over IngestTagEvents (button presses first, at most 500 outstanding), resends what
was not acked after a failure, honours RetryInfo, and submits batches with SubmitTagEvents.

    python examples/clients/gateway_client.py --target 127.0.0.1:50551 --control http://127.0.0.1:8080 \
        --ca-file reports/harness/pki/ca.pem [--misbehave press-late]
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import child_safety_pb2, child_safety_pb2_grpc, common_pb2
from google.protobuf.timestamp_pb2 import Timestamp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Control, channel, drive, metadata, parse_args, retry_delay, tls_check, with_retries

WINDOW = 500
MISBEHAVIOURS = {
    "reuse-event-id": "give the button press the event_id of an earlier event",
    "no-resend": "forget the events in flight when the first stream fails",
    "resend-rejected": "resend an event acknowledged REJECTED (once, unchanged)",
    "press-late": "send a button press in observed_time order, behind older events",
    "no-backoff": "reconnect at once, ignoring RetryInfo",
    "no-window": "send without limiting the events outstanding without an ack",
}


class Gateway:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.md = metadata(args.token)
        self.ch = channel(args.target, args.ca_file)
        self.stub = child_safety_pb2_grpc.TagEventServiceStub(self.ch)
        #: The store: events recorded and not yet acked ACCEPTED / DUPLICATE (or REJECTED).
        self.outbox: dict[str, child_safety_pb2.TagEvent] = {}
        self.first_id = ""
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.forgot_once = False
        self.resent_rejected: set[str] = set()

    def record(self, reader: str, kind: int, tag_uid: str = "") -> child_safety_pb2.TagEvent:
        ts = Timestamp()
        ts.FromDatetime(datetime.now(UTC))
        event = child_safety_pb2.TagEvent(
            event_id=str(uuid.uuid4()),
            reader=reader,
            tag_uid=tag_uid,
            kind=kind,  # type: ignore[arg-type]
            observed_time=ts,
            mode=common_pb2.MODE_TEST,
        )
        if kind == child_safety_pb2.TAG_EVENT_KIND_SIGHTING:
            event.sighting.rssi_dbm = -60
        if kind == child_safety_pb2.TAG_EVENT_KIND_BUTTON_PRESS and self.args.misbehave == "reuse-event-id":
            event.event_id = self.first_id
        self.first_id = self.first_id or event.event_id
        return event

    def store(self, event: child_safety_pb2.TagEvent) -> None:
        self.outbox[event.event_id + ("#press" if event.event_id in self.outbox else "")] = event
        self.wake.set()

    def ordered(self) -> list[tuple[str, child_safety_pb2.TagEvent]]:
        def key(item: tuple[str, child_safety_pb2.TagEvent]) -> tuple[int, int]:
            press = item[1].kind in (
                child_safety_pb2.TAG_EVENT_KIND_BUTTON_PRESS,
                child_safety_pb2.TAG_EVENT_KIND_BELL_PRESS,
            )
            first = 0 if press and self.args.misbehave != "press-late" else 1
            return (first, item[1].observed_time.ToNanoseconds())

        return sorted(self.outbox.items(), key=key)

    async def settled(self, within_s: float) -> None:
        for _ in range(int(within_s * 20)):
            if not self.outbox:
                return
            await asyncio.sleep(0.05)

    # --- delivery ---------------------------------------------------------------------------------

    async def deliver(self) -> None:
        attempt = 0
        while True:
            call = self.stub.IngestTagEvents(metadata=self.md)  # type: ignore[call-arg]
            in_flight: dict[str, str] = {}  # event_id → outbox key
            sent_keys: set[str] = set()

            async def read_acks(
                call: Any = call, in_flight: dict[str, str] = in_flight, sent_keys: set[str] = sent_keys
            ) -> None:
                async for ack in call:
                    key = in_flight.pop(ack.event_id, None)
                    if key is not None:
                        sent_keys.discard(key)
                    keep = (
                        ack.status == child_safety_pb2.TAG_EVENT_ACK_STATUS_REJECTED
                        and self.args.misbehave == "resend-rejected"
                        and ack.event_id not in self.resent_rejected
                    )
                    if keep:
                        self.resent_rejected.add(ack.event_id)
                    elif key is not None:
                        self.outbox.pop(key, None)
                    self.wake.set()

            reader = asyncio.create_task(read_acks())
            try:
                while not reader.done():
                    room = len(in_flight) < WINDOW or self.args.misbehave == "no-window"
                    sendable = (
                        next(((k, e) for k, e in self.ordered() if k not in sent_keys), None)
                        if room
                        else None
                    )
                    if sendable is not None:
                        key, event = sendable
                        in_flight[event.event_id] = key
                        sent_keys.add(key)
                        await call.write(child_safety_pb2.IngestTagEventsRequest(event=event))
                        attempt = 0
                        continue
                    self.wake.clear()
                    waiter = asyncio.create_task(self.wake.wait())
                    await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                await reader
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                pass
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)  # the call's status is read below
            if self.args.misbehave == "no-resend" and not self.forgot_once:
                self.forgot_once = True
                for key in in_flight.values():
                    self.outbox.pop(key, None)
            code = await call.code()
            error = grpc.aio.AioRpcError(
                code,
                await call.initial_metadata(),
                await call.trailing_metadata(),
                await call.details(),
                None,
            )
            delay = 0.02 if self.args.misbehave == "no-backoff" else retry_delay(error, attempt)
            await asyncio.sleep(delay)
            attempt += 1

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self.deliver())

    # --- steps ------------------------------------------------------------------------------------

    async def tls(self, step: dict[str, Any]) -> dict[str, Any]:
        async def probe(ch: grpc.aio.Channel) -> Any:
            stub = child_safety_pb2_grpc.TagEventServiceStub(ch)
            return await stub.SubmitTagEvents(
                child_safety_pb2.SubmitTagEventsRequest(), metadata=self.md, timeout=3
            )

        return await tls_check(self.args, step["address"], probe)

    async def stream_events(self, step: dict[str, Any]) -> dict[str, Any]:
        self.start()
        for _ in range(int(step["sightings"])):
            self.store(self.record(step["reader"], child_safety_pb2.TAG_EVENT_KIND_SIGHTING, step["tag_uid"]))
            await asyncio.sleep(0.05)
        await self.settled(15)
        return {}

    async def offline_then_press(self, step: dict[str, Any]) -> dict[str, Any]:
        for _ in range(int(step["sightings"])):
            self.store(self.record(step["reader"], child_safety_pb2.TAG_EVENT_KIND_SIGHTING, step["tag_uid"]))
            await asyncio.sleep(0.02)
        self.store(
            self.record(step["reader"], child_safety_pb2.TAG_EVENT_KIND_SIGHTING, step["unknown_tag_uid"])
        )
        await asyncio.sleep(float(step["press_after_s"]))
        self.store(self.record(step["reader"], child_safety_pb2.TAG_EVENT_KIND_BUTTON_PRESS, step["tag_uid"]))
        await self.settled(15)
        return {}

    async def backlog(self, step: dict[str, Any]) -> dict[str, Any]:
        for _ in range(int(step["sightings"])):
            self.store(self.record(step["reader"], child_safety_pb2.TAG_EVENT_KIND_SIGHTING, step["tag_uid"]))
        await self.settled(20)
        return {}

    async def submit_batch(self, step: dict[str, Any]) -> dict[str, Any]:
        events = [
            self.record(step["reader"], child_safety_pb2.TAG_EVENT_KIND_SIGHTING, step["tag_uid"])
            for _ in range(int(step["sightings"]))
        ]
        request = child_safety_pb2.SubmitTagEventsRequest(events=events, request_id=str(uuid.uuid4()))
        await with_retries(lambda n: self.stub.SubmitTagEvents(request, metadata=self.md, timeout=5))
        return {}


async def main() -> None:
    args = parse_args("reader-gateway", MISBEHAVIOURS)
    gateway = Gateway(args)
    handlers = {
        "tls_check": gateway.tls,
        "stream_events": gateway.stream_events,
        "offline_then_press": gateway.offline_then_press,
        "backlog": gateway.backlog,
        "submit_batch": gateway.submit_batch,
    }
    try:
        await drive(Control(args.control), handlers, args.timeout)
    finally:
        if gateway.task is not None:
            gateway.task.cancel()
        await gateway.ch.close(None)


if __name__ == "__main__":
    asyncio.run(main())
