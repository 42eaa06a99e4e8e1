"""Example safety-app client: raises an SOS, streams location with acked resends, watches the
emergency with resume and dedupe, cancels — following a conformance harness's scenario.

    python examples/clients/app_client.py --target 127.0.0.1:50551 --control http://127.0.0.1:8080 \
        --ca-file reports/harness/pki/ca.pem [--misbehave wrong-order]
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
from ansim.v1 import common_pb2, emergency_pb2, emergency_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import Control, channel, drive, metadata, parse_args, retry_delay, tls_check, with_retries

MISBEHAVIOURS = {
    "no-request-id": "RaiseEmergency without request_id",
    "new-id-on-retry": "a fresh request_id on each retry of RaiseEmergency",
    "reuse-request-id": "CancelEmergency reuses the request_id of RaiseEmergency",
    "wrong-order": "after a broken StreamLocation, send a new fix before resending the unacknowledged one",
    "no-resume": "resubscribe WatchEmergency without the cursor after a break",
    "no-dedupe": "process a redelivered watch event again",
}


class App:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.md = metadata(args.token)
        self.ch = channel(args.target, args.ca_file)
        self.stub = emergency_pb2_grpc.EmergencyServiceStub(self.ch)
        self.name = ""
        self.raise_id = ""
        self.lat, self.lon = 37.5729, 126.9794
        # Location: fixes by sequence, unacknowledged ones, the next sequence.
        self.fixes: dict[int, emergency_pb2.StreamLocationRequest] = {}
        self.unacked: set[int] = set()
        self.next_seq = 1
        self.last_new_sent = 0.0
        self.location_done = asyncio.Event()
        self.location_ended = asyncio.Event()
        # Watch: cursors processed, last sequence processed.
        self.processed: list[str] = []
        self.last_cursor = ""
        self.last_seq = 0
        self.tasks: list[asyncio.Task[None]] = []

    def fix(self) -> common_pb2.Location:
        """A fix 'measured now' (the handset's positioning would give its own time)."""
        ts = Timestamp()
        ts.FromDatetime(datetime.now(UTC))
        self.lat += 0.0001
        return common_pb2.Location(
            latitude=self.lat,
            longitude=self.lon,
            radius_m=12,
            confidence_percent=68,
            method=common_pb2.POSITIONING_METHOD_GNSS,
            fix_time=ts,
        )

    # --- steps -----------------------------------------------------------------------------

    async def tls(self, step: dict[str, Any]) -> dict[str, Any]:
        async def probe(ch: grpc.aio.Channel) -> Any:
            stub = emergency_pb2_grpc.EmergencyServiceStub(ch)
            return await stub.CancelEmergency(
                emergency_pb2.CancelEmergencyRequest(), metadata=self.md, timeout=3
            )

        return await tls_check(self.args, step["address"], probe)

    async def raise_sos(self, step: dict[str, Any]) -> dict[str, Any]:
        self.lat, self.lon = step["latitude"], step["longitude"]
        self.raise_id = "" if self.args.misbehave == "no-request-id" else str(uuid.uuid4())
        request = emergency_pb2.RaiseEmergencyRequest(
            parent=step["parent"],
            request_id=self.raise_id,
            mode=common_pb2.Mode.Value(step["mode"]),
            kind=emergency_pb2.EmergencyKind.Value(step["kind"]),
            location=self.fix(),
        )

        async def attempt(n: int) -> emergency_pb2.Emergency:
            if n and self.args.misbehave == "new-id-on-retry":
                request.request_id = str(uuid.uuid4())
            return await self.stub.RaiseEmergency(request, metadata=self.md, timeout=5)

        emergency = await with_retries(attempt)
        self.name = emergency.name
        return {"emergency": self.name}

    async def track(self, step: dict[str, Any]) -> dict[str, Any]:
        self.name = step["name"] or self.name
        self.tasks.append(asyncio.create_task(self.watch()))
        self.tasks.append(
            asyncio.create_task(self.stream_location(int(step["fixes"]), float(step["fix_interval_s"])))
        )
        try:
            await asyncio.wait_for(self.location_done.wait(), 30)
            for _ in range(100):
                if self.last_seq >= 4:
                    break
                await asyncio.sleep(0.1)
        except TimeoutError:
            pass
        return {"processed_cursors": list(self.processed)}

    async def cancel(self, step: dict[str, Any]) -> dict[str, Any]:
        request_id = self.raise_id if self.args.misbehave == "reuse-request-id" else str(uuid.uuid4())
        request = emergency_pb2.CancelEmergencyRequest(
            name=step["name"] or self.name,
            request_id=request_id,
            reason=emergency_pb2.EmergencyCancelReason.Value(step["reason"]),
        )
        await with_retries(lambda n: self.stub.CancelEmergency(request, metadata=self.md, timeout=5))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.location_ended.wait(), 5)
        return {"processed_cursors": list(self.processed)}

    # --- background streams -------------------------------------------------------------------

    async def stream_location(self, fixes: int, interval: float) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            call = self.stub.StreamLocation(metadata=self.md)  # type: ignore[call-arg]
            acks_seen = asyncio.Event()

            async def read_acks(call: Any = call, acks_seen: asyncio.Event = acks_seen) -> None:
                async for ack in call:
                    self.unacked.discard(ack.sequence)
                    acks_seen.set()
                    if not self.unacked and self.next_seq > fixes:
                        self.location_done.set()

            reader = asyncio.create_task(read_acks())
            try:
                resend = sorted(self.unacked)
                new_first = self.args.misbehave == "wrong-order" and resend and self.next_seq <= fixes
                if new_first:
                    await asyncio.sleep(max(0.0, self.last_new_sent + interval - loop.time()))
                    await self.send_new(call)
                for seq in resend:
                    await call.write(self.fixes[seq])
                while self.next_seq <= fixes:
                    await asyncio.sleep(max(0.0, self.last_new_sent + interval - loop.time()))
                    if reader.done():
                        break
                    await self.send_new(call)
                await reader
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                pass
            code = await call.code()
            if code == grpc.StatusCode.FAILED_PRECONDITION or code == grpc.StatusCode.OK:
                self.location_ended.set()
                return
            reader.cancel()
            error = grpc.aio.AioRpcError(
                code,
                await call.initial_metadata(),
                await call.trailing_metadata(),
                await call.details(),
                None,
            )
            await asyncio.sleep(retry_delay(error, attempt))
            attempt += 1

    async def send_new(self, call: Any) -> None:
        seq = self.next_seq
        self.next_seq += 1
        request = emergency_pb2.StreamLocationRequest(name=self.name, sequence=seq, location=self.fix())
        self.fixes[seq] = request
        self.unacked.add(seq)
        self.last_new_sent = asyncio.get_running_loop().time()
        await call.write(request)

    async def watch(self) -> None:
        attempt = 0
        while True:
            cursor = "" if self.args.misbehave == "no-resume" else self.last_cursor
            call = self.stub.WatchEmergency(
                emergency_pb2.WatchEmergencyRequest(name=self.name, resume_cursor=cursor), metadata=self.md
            )
            try:
                async for event in call:
                    if event.sequence <= self.last_seq and self.args.misbehave != "no-dedupe":
                        continue  # already processed [STM-005]
                    self.processed.append(event.cursor)
                    self.last_cursor, self.last_seq = event.cursor, event.sequence
                return
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    return
                await asyncio.sleep(retry_delay(error, attempt))
                attempt += 1


async def main() -> None:
    args = parse_args("app", MISBEHAVIOURS)
    app = App(args)
    handlers = {"tls_check": app.tls, "raise_sos": app.raise_sos, "track": app.track, "cancel": app.cancel}
    try:
        await drive(Control(args.control), handlers, args.timeout)
    finally:
        for task in app.tasks:
            task.cancel()
        await app.ch.close(None)


if __name__ == "__main__":
    asyncio.run(main())
