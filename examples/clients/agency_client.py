"""Example agency (112/119 situation room) client: subscribes to dispatches, acknowledges PENDING
ones at once, resumes with the last processed cursor, discards redeliveries, resubscribes on a gap
and without a cursor after CURSOR_EXPIRED, reports its unit's progress.

    python examples/clients/agency_client.py --target 127.0.0.1:50551 --control http://127.0.0.1:8080 \
        --ca-file reports/harness/pki/ca.pem [--misbehave no-resume]
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from ansim.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc
from google.protobuf.duration_pb2 import Duration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import Control, channel, drive, metadata, parse_args, retry_delay, tls_check, with_retries

MISBEHAVIOURS = {
    "no-resume": "resubscribe without the cursor after a disconnection",
    "ignore-gap": "process an event that skips a sequence instead of resubscribing",
    "no-dedupe": "process a redelivered event again",
    "new-id-on-retry": "a fresh request_id on the retry of AcknowledgeDispatch",
    "reuse-request-id": "the first UpdateDispatchStatus reuses the request_id of an AcknowledgeDispatch",
}


class Gap(Exception):
    pass


class Agency:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.md = metadata(args.token)
        self.ch = channel(args.target, args.ca_file)
        self.stub = dispatch_pb2_grpc.DispatchServiceStub(self.ch)
        self.last_cursor = ""
        self.last_seq = 0
        self.processed: list[str] = []
        self.replaying: set[str] = set()
        self.active: set[str] = set()
        self.active_after_replay: list[str] = []
        self.acked: set[str] = set()
        self.ack_ids: list[str] = []
        self.restarted = asyncio.Event()
        self.expired_once = False
        self.tasks: list[asyncio.Task[Any]] = []

    async def acknowledge(self, dispatch: dispatch_pb2.Dispatch, unit_id: str) -> None:
        request = dispatch_pb2.AcknowledgeDispatchRequest(
            name=dispatch.name,
            request_id=str(uuid.uuid4()),
            unit_id=unit_id,
            eta_duration=Duration(seconds=240),
        )
        self.ack_ids.append(request.request_id)

        async def attempt(n: int) -> dispatch_pb2.Dispatch:
            if n and self.args.misbehave == "new-id-on-retry":
                request.request_id = str(uuid.uuid4())
            return await self.stub.AcknowledgeDispatch(request, metadata=self.md, timeout=5)

        await with_retries(attempt)

    def process(self, event: dispatch_pb2.DispatchEvent, unit_id: str) -> None:
        self.processed.append(event.cursor)
        self.last_cursor, self.last_seq = event.cursor, event.sequence
        if event.type == dispatch_pb2.DISPATCH_EVENT_TYPE_REPLAY_COMPLETE:
            self.active = set(self.replaying)
            self.active_after_replay = sorted(self.active)
            if self.expired_once:
                self.restarted.set()
            return
        dispatch = event.dispatch
        if event.type == dispatch_pb2.DISPATCH_EVENT_TYPE_SNAPSHOT:
            self.replaying.add(dispatch.name)
        if dispatch.state in (
            dispatch_pb2.DISPATCH_STATE_CLOSED,
            dispatch_pb2.DISPATCH_STATE_CLEARED,
            dispatch_pb2.DISPATCH_STATE_SUPERSEDED,
        ):
            self.active.discard(dispatch.name)
        else:
            self.active.add(dispatch.name)
        if dispatch.state == dispatch_pb2.DISPATCH_STATE_PENDING and dispatch.name not in self.acked:
            self.acked.add(dispatch.name)
            self.tasks.append(asyncio.create_task(self.acknowledge(dispatch, unit_id)))

    async def subscribe(self, step: dict[str, Any]) -> None:
        attempt = 0
        broke = False
        while True:
            cursor = "" if (broke and self.args.misbehave == "no-resume") else self.last_cursor
            request = dispatch_pb2.SubscribeDispatchesRequest(
                parent=step["parent"],
                agency=step["agency"],
                mode=common_pb2.Mode.Value(step["mode"]),
                resume_cursor=cursor,
            )
            call = self.stub.SubscribeDispatches(request, metadata=self.md)
            try:
                async for event in call:
                    if (
                        self.last_seq
                        and event.sequence <= self.last_seq
                        and self.args.misbehave != "no-dedupe"
                    ):
                        continue  # already processed [AGY-003]
                    if (
                        self.last_seq
                        and event.sequence > self.last_seq + 1
                        and self.args.misbehave != "ignore-gap"
                    ):
                        raise Gap
                    self.process(event, step["unit_id"])
                return
            except Gap:
                call.cancel()
                broke = False  # resubscribe at once with the last processed cursor
                continue
            except grpc.aio.AioRpcError as error:
                broke = True
                if error.code() in (grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.INVALID_ARGUMENT):
                    # CURSOR_EXPIRED / CURSOR_INVALID: a new scope, without a cursor [AGY-004]
                    self.last_cursor, self.last_seq = "", 0
                    self.replaying.clear()
                    self.expired_once = True
                    continue
                await asyncio.sleep(min(retry_delay(error, attempt), 5.0))
                attempt += 1

    # --- steps -----------------------------------------------------------------------------------

    async def tls(self, step: dict[str, Any]) -> dict[str, Any]:
        async def probe(ch: grpc.aio.Channel) -> Any:
            stub = dispatch_pb2_grpc.DispatchServiceStub(ch)
            return await stub.AcknowledgeDispatch(
                dispatch_pb2.AcknowledgeDispatchRequest(), metadata=self.md, timeout=3
            )

        return await tls_check(self.args, step["address"], probe)

    async def subscribed(self, step: dict[str, Any]) -> dict[str, Any]:
        self.tasks.append(asyncio.create_task(self.subscribe(step)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.restarted.wait(), 25)
        return {"processed_cursors": list(self.processed), "active_after_replay": self.active_after_replay}

    def _status_attempt(
        self, request: dispatch_pb2.UpdateDispatchStatusRequest
    ) -> Callable[[int], Awaitable[dispatch_pb2.Dispatch]]:
        async def attempt(n: int) -> dispatch_pb2.Dispatch:
            return await self.stub.UpdateDispatchStatus(request, metadata=self.md, timeout=5)

        return attempt

    async def report_status(self, step: dict[str, Any]) -> dict[str, Any]:
        for n, state in enumerate(step["states"]):
            reuse = n == 0 and self.args.misbehave == "reuse-request-id" and self.ack_ids
            request = dispatch_pb2.UpdateDispatchStatusRequest(
                name=step["dispatch"],
                request_id=self.ack_ids[0] if reuse else str(uuid.uuid4()),
                state=dispatch_pb2.DispatchState.Value(state),
            )
            await with_retries(self._status_attempt(request))
        return {}


async def main() -> None:
    args = parse_args("agency", MISBEHAVIOURS)
    agency = Agency(args)
    handlers = {
        "tls_check": agency.tls,
        "subscribe": agency.subscribed,
        "report_status": agency.report_status,
    }
    try:
        await drive(Control(args.control), handlers, args.timeout)
    finally:
        for task in agency.tasks:
            task.cancel()
        await agency.ch.close(None)


if __name__ == "__main__":
    asyncio.run(main())
